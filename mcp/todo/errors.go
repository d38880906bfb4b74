package todo

import (
	"context"
	"errors"

	"github.com/todo-gateway/todo-gateway/store"
)

// storeAnswer is how the tools treat one kind of store error.
type storeAnswer struct {
	err     error
	outcome string // labels the store latency metric
	// refusal marks the caller's fault (bad input, an id that is not there
	// or not theirs): the tool answers it and nothing is logged. Anything
	// else is a failure, logged with the request id and answered generically.
	refusal bool
	// showText lets the tool pass the error's own message to the caller
	// (it names what to fix and holds nothing internal).
	showText bool
	// retry, for a failure the client should simply retry, is what the
	// tool tells it instead of a generic error.
	retry string
}

// storeAnswers map the store's error classes to answers, in one table: the
// tools' answers, the outcome label of the store metrics (StoreOutcome) and
// what Writes records all read it. The first whose err matches answers.
var storeAnswers = []storeAnswer{
	{err: store.ErrInvalid, outcome: "invalid", refusal: true, showText: true},
	{err: store.ErrNotFound, outcome: "not_found", refusal: true},
	{err: store.ErrDenied, outcome: "denied", refusal: true},
	// The client went away (its connection closed): nobody is left to
	// answer, and nothing failed. Before ErrUnavailable, because etcd
	// wraps the cancellation of a call it had started in ErrUnavailable
	// ("create: store unavailable: context canceled").
	clientGone,
	// The store could not answer or could not write (etcd without a
	// quorum, a full disk under bbolt): the client should come back, and
	// a write tool says that its write may or may not have happened
	// (unsureWrites), so that a client retrying a create knows it may find
	// two.
	{err: store.ErrUnavailable, outcome: "unavailable",
		retry: "the todo store is temporarily unavailable; retry later"},
	// The instance is shutting down and has closed its store: another
	// instance, or this one restarted, will answer.
	{err: store.ErrClosed, outcome: "closed", retry: "the todo store is temporarily unavailable; retry later"},
	// Last, because an etcd timeout wraps both ErrUnavailable and
	// DeadlineExceeded: a deadline of the caller's own is a cancellation.
	{err: context.DeadlineExceeded, outcome: "canceled", refusal: true},
}

var clientGone = storeAnswer{err: context.Canceled, outcome: "canceled", refusal: true}

var storeFailure = storeAnswer{outcome: "error"}

func storeAnswerFor(err error) storeAnswer {
	for _, a := range storeAnswers {
		if errors.Is(err, a.err) {
			return a
		}
	}
	return storeFailure
}

// StoreOutcome is a bounded label for a store operation's result: "ok", or
// the kind of error.
func StoreOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	return storeAnswerFor(err).outcome
}
