package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/todo-gateway/todo-gateway/store"
)

// Writes that may have committed without saying so are resolved here: the
// retry loop, which errors are worth retrying, and how a failure that
// persisted is reported.

// errConflict is a conditional write that lost to another writer; it is
// retried at once.
var errConflict = errors.New("changed by another writer")

// retry runs a write's attempts until one reports done, or its error is
// not worth retrying, or WriteTimeout has passed; each attempt has
// RequestTimeout. The retries run on a context detached from the caller's
// cancellation: an attempt that failed ambiguously must be resolved even if
// the caller gave up, or a committed write could be reported as failed.
func (s *Store) retry(ctx context.Context, attempt func(ctx context.Context) (done bool, err error)) error {
	return s.retryWithin(context.WithoutCancel(ctx), s.opts.WriteTimeout, attempt)
}

// retryWithin runs attempt until done, a refusal, or limit has passed on ctx.
func (s *Store) retryWithin(ctx context.Context, limit time.Duration, attempt func(ctx context.Context) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	backoff := 25 * time.Millisecond
	for tries := 1; ; tries++ {
		actx, acancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		done, err := attempt(actx)
		acancel()
		if done {
			if tries > 1 && err == nil {
				s.opts.Logger.Info("etcd answered after retries", "attempts", tries)
			}
			return err
		}
		if !retryable(err) || ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			// Refused, or the caller left (a read's client went away):
			// nothing to retry for, and nothing an operator needs to see.
			return err
		}
		if errors.Is(err, errConflict) && ctx.Err() == nil {
			continue
		}
		if tries == 1 {
			// While etcd elects a leader, requests stall for a second or
			// two; without this line an operator would only see latency.
			s.opts.Logger.Warn("etcd did not answer; retrying", "err", err.Error(), "for_at_most", limit.String())
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retryable reports whether a failed request may succeed if sent again:
// the cluster was unreachable, electing a leader or too slow, or the
// connection broke. Refusals (bad request, permission denied, no space)
// would only fail again.
func retryable(err error) bool {
	if errors.Is(err, errConflict) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unknown, codes.Aborted, codes.Canceled, codes.Internal:
		return true
	}
	return false
}

// failure wraps an etcd error. One that persisted through the retries
// because the cluster could not answer is store.ErrUnavailable, so the
// caller can tell its client to retry.
func (s *Store) failure(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrUnknownTenant), errors.Is(err, store.ErrInvalid):
		return err
	case retryable(err):
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
