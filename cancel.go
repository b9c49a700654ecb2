package vigil

import (
	"context"
	"strings"
)

// cancelKey marks a job's context with how to learn who cancelled it.
type cancelKey struct{}

// WithCancelledBy marks the context of a running job with by, which
// reports who cancelled the job ("through the API: reason") once its
// context was cancelled for that reason, and false when the context is
// live or ended for another (vigil stopping, a timeout). The job runner
// sets it; the code a job runs asks CancelledBy, and so tells a person's
// cancel apart from vigil's stop.
func WithCancelledBy(ctx context.Context, by func() (string, bool)) context.Context {
	return context.WithValue(ctx, cancelKey{}, by)
}

// CancelledBy reports who cancelled the job ctx belongs to, if it was
// cancelled. It still answers through context.WithoutCancel, which keeps
// the mark: clean-up code runs on such contexts.
func CancelledBy(ctx context.Context) (string, bool) {
	by, ok := ctx.Value(cancelKey{}).(func() (string, bool))
	if !ok {
		return "", false
	}
	return by()
}

// CancelledMessage is the status message of a job cancelled by who,
// followed by what became of its work.
func CancelledMessage(who, what string) string {
	return "cancelled " + who + "; " + what
}

// CancelledThroughAPI is who cancelled a job through the API, the only
// way in: the API has one token, so the caller is not known by name, and
// the reason the caller gave says the rest.
func CancelledThroughAPI(reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return "through the API: " + reason
	}
	return "through the API"
}
