package validate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
)

// maxChecksumMessage bounds the comparison's error quoted in a message; it
// may list many differing files.
const maxChecksumMessage = 2000

// checksumCheck compares the restored files with the recovery point through
// Target.Checksum.
type checksumCheck struct {
	backoff

	pct     float64
	compare func(ctx context.Context, samplePercent float64) error
}

func newChecksumCheck(cfg config.ChecksumCheck, t Target) check {
	c := &checksumCheck{pct: cfg.SamplePercent, compare: t.Checksum}
	if t.Checksum == nil {
		return unavailable{what: c.name(), reason: "its files cannot be compared with the recovery point"}
	}

	return c
}

func (c *checksumCheck) name() string {
	if c.pct >= 100 {
		return "checksum"
	}

	return "checksum " + strconv.FormatFloat(c.pct, 'f', -1, 64) + "%"
}

func (c *checksumCheck) try(window context.Context) attempt {
	err := c.compare(window, c.pct)

	switch {
	case window.Err() != nil:
		return attempt{outcome: noAnswer, message: "comparison not finished before the validation window closed"}
	case err != nil:
		msg := err.Error()
		if r := []rune(msg); len(r) > maxChecksumMessage {
			msg = string(r[:maxChecksumMessage]) + "…"
		}

		// the error says itself what differs, or what stopped the comparison
		return attempt{outcome: finalFailure, message: msg}
	}

	if c.pct >= 100 {
		return attempt{outcome: passed, message: "all files equal the recovery point"}
	}

	return attempt{outcome: passed, message: "files equal the recovery point, " + strconv.FormatFloat(c.pct, 'f', -1, 64) + "% of contents compared"}
}

// externalCheck waits for a verdict reported through the API.
type externalCheck struct {
	verdict func(ctx context.Context) (vigil.ValidationStatus, string, bool, error)
	jobID   string
}

func newExternalCheck(t Target) check {
	if t.External == nil {
		return unavailable{what: "external", reason: "no verdict can be reported through the API for it"}
	}

	return &externalCheck{verdict: t.External, jobID: t.JobID}
}

func (c *externalCheck) name() string { return "external" }

func (c *externalCheck) retryDelay(time.Duration) time.Duration { return externalPoll }

func (c *externalCheck) try(window context.Context) attempt {
	status, msg, ok, err := c.verdict(window)

	switch {
	case window.Err() != nil:
		return attempt{outcome: noAnswer, message: "no verdict reported"}
	case err != nil:
		return attempt{outcome: noAnswer, message: "cannot read the reported verdict: " + err.Error()}
	case !ok:
		return attempt{outcome: noAnswer, message: fmt.Sprintf("no verdict reported (PUT /api/v1/restore-jobs/%s/validation)", c.jobID)}
	}

	switch status {
	case vigil.ValidationSuccessful:
		return attempt{outcome: passed, message: reported(status, msg)}
	case vigil.ValidationFailed:
		return attempt{outcome: finalFailure, message: reported(status, msg)}
	case vigil.ValidationTimedOut:
		return attempt{outcome: finalTimedOut, message: reported(status, msg)}
	}

	return attempt{outcome: noAnswer, message: fmt.Sprintf("verdict %s reported, waiting for a final one", status)}
}

// maxReported bounds the message of a reported verdict quoted in ours.
const maxReported = 500

func reported(status vigil.ValidationStatus, msg string) string {
	if msg == "" {
		return "reported " + string(status)
	}

	if r := []rune(msg); len(r) > maxReported {
		msg = string(r[:maxReported]) + "…"
	}

	return fmt.Sprintf("reported %s: %s", status, msg)
}
