package resourcetest

import (
	"context"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/validate"
	"github.com/vigil-backup/vigil/vault"
)

// Hooks run before a copy's methods (Restored: after its Restore). A hook
// that returns an error fails the method with it; one may also change the
// copy, or Crash.
type Hooks struct {
	Restore, Restored, Check, Start, Delete func(cp resource.Copy) error
}

// Decorate returns cp with hooks h run before its methods. A copy that
// starts something stays a resource.Starter.
func Decorate(cp resource.Copy, h Hooks) resource.Copy {
	d := &decorated{Copy: cp, h: h}
	if s, ok := cp.(resource.Starter); ok {
		return &decoratedStarter{decorated: d, s: s}
	}
	return d
}

type decorated struct {
	resource.Copy
	h Hooks
}

func run(hook func(resource.Copy) error, cp resource.Copy) error {
	if hook == nil {
		return nil
	}
	return hook(cp)
}

func (d *decorated) Restore(ctx context.Context, v *vault.Vault, rp vigil.RecoveryPoint) (string, error) {
	if err := run(d.h.Restore, d.Copy); err != nil {
		return "", err
	}
	summary, err := d.Copy.Restore(ctx, v, rp)
	if err == nil {
		err = run(d.h.Restored, d.Copy)
	}
	return summary, err
}

// Restored passes on what the copy's Restore read and wrote, when it
// says.
func (d *decorated) Restored() vault.RestoreResult {
	if r, ok := d.Copy.(resource.Restored); ok {
		return r.Restored()
	}
	return vault.RestoreResult{}
}

func (d *decorated) Check(ctx context.Context, rp vigil.RecoveryPoint, t *validate.Target) (string, error) {
	if err := run(d.h.Check, d.Copy); err != nil {
		return "", err
	}
	return d.Copy.Check(ctx, rp, t)
}

func (d *decorated) Delete(ctx context.Context) (string, error) {
	if err := run(d.h.Delete, d.Copy); err != nil {
		return "", err
	}
	return d.Copy.Delete(ctx)
}

type decoratedStarter struct {
	*decorated
	s resource.Starter
}

func (d *decoratedStarter) Start(log func(string), opts resource.StartOptions) (resource.Running, error) {
	if err := run(d.h.Start, d.Copy); err != nil {
		return nil, err
	}
	return d.s.Start(log, opts)
}
