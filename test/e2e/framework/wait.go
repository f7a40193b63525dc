//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PollInterval is how often the wait helpers re-check a condition.
const PollInterval = 250 * time.Millisecond

// WaitFor polls cond until it reports done, returns an error, or timeout passes (or ctx ends). A
// timeout error names what was awaited and wraps the last error or status cond reported.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	var last error
	for {
		done, err := cond(ctx)
		switch {
		case err == nil && done:
			return nil
		case err == nil:
		case errors.As(err, new(*permanentError)):
			return fmt.Errorf("waiting for %s: %w", what, errors.Unwrap(err))
		case ctx.Err() == nil || last == nil:
			// An error caused by the deadline itself would hide what was seen before it.
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, ctx.Err())
		case <-ticker.C:
		}
	}
}

// Permanent marks an error that must end a WaitFor at once instead of being retried.
func Permanent(err error) error { return &permanentError{err: err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Pending reports a condition that is not met yet; WaitFor retries it and, on timeout, includes the
// last Pending message in its error so the failure says what was seen.
func Pending(format string, args ...any) error { return fmt.Errorf(format, args...) }
