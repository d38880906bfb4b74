package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The porcupine check must accept every history a linearizable todo store
// can give, failed operations included, and refuse each anomaly the
// nemesis test is there to find. It runs without etcd or a gateway.
func TestLinearizableChecker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Ids sort like the numbers given (fixed width, as real ids are).
	id := func(n int) string { return fmt.Sprintf("01k%023d", n) }
	content := func(n int) string { return fmt.Sprintf("c%d", n) }
	td := func(n int) todo { return todo{ID: id(n), Content: content(n), OwnerID: "alice"} }
	create := func(n, from, to int) *op {
		return &op{kind: opCreate, client: "w", subject: "alice", via: "g1", content: content(n), id: id(n),
			got: &todo{ID: id(n), Content: content(n), OwnerID: "alice"}, start: at(from), end: at(to), outcome: ok}
	}
	// failedCreate got an error: it may have happened (a list shows it) or
	// not.
	failedCreate := func(n, from, to int) *op {
		return &op{kind: opCreate, client: "w", subject: "alice", via: "g2", content: content(n), start: at(from), end: at(to),
			outcome: failed, errText: "tool error: the todo store is temporarily unavailable"}
	}
	del := func(n int, out outcome, from, to int) *op {
		o := &op{kind: opDelete, client: "w", subject: "alice", via: "g3", id: id(n), start: at(from), end: at(to), outcome: out}
		if out == ok {
			o.got = &todo{ID: id(n), Content: content(n), OwnerID: "alice"}
		}
		return o
	}
	list := func(from, to int, ns ...int) *op {
		o := &op{kind: opListOwn, client: "r", subject: "alice", via: "g1", start: at(from), end: at(to), outcome: ok, complete: true, todos: []todo{}}
		for _, n := range ns {
			o.todos = append(o.todos, td(n))
		}
		return o
	}
	h := func(ops ...*op) []*op { return ops }
	cases := []struct {
		name  string
		ops   []*op
		legal bool
		want  string // in the report of an illegal history
	}{
		// Legal histories.
		{"create, list, delete, list", h(create(1, 0, 10), list(20, 30, 1), del(1, ok, 40, 50), list(60, 70)), true, ""},
		{"a list concurrent with a create may show it", h(create(1, 0, 100), list(10, 20, 1), list(30, 40, 1)), true, ""},
		{"… or not", h(create(1, 0, 100), list(10, 20), list(110, 120, 1)), true, ""},
		{"a failed create that happened", h(failedCreate(1, 0, 10), list(20, 30, 1), del(1, ok, 40, 50), list(60, 70)), true, ""},
		{"a failed create seen only later", h(failedCreate(1, 0, 10), list(20, 30), list(40, 50, 1)), true, ""},
		{"a failed create never seen", h(failedCreate(1, 0, 10), list(20, 30)), true, ""},
		{"a failed delete that happened", h(create(1, 0, 10), del(1, failed, 20, 30), list(40, 50)), true, ""},
		{"a failed delete that did not", h(create(1, 0, 10), del(1, failed, 20, 30), list(40, 50, 1)), true, ""},
		{"a failed delete that happened late", h(create(1, 0, 10), del(1, failed, 20, 30), list(40, 50, 1), list(60, 70)), true, ""},
		{"concurrent deletes: one wins", h(create(1, 0, 10), del(1, ok, 20, 40), del(1, refused, 25, 35), list(50, 60)), true, ""},
		{"a delete of a deleted todo is not-found", h(create(1, 0, 10), del(1, ok, 20, 30), del(1, refused, 40, 50)), true, ""},
		{"two owners apart", h(create(1, 0, 10), list(20, 30, 1), func() *op {
			o := list(20, 30)
			o.subject = "bob"
			return o
		}()), true, ""},
		{"creation order across instances", h(create(2, 0, 10), create(1, 5, 15), list(20, 30, 1, 2)), true, ""},

		// Anomalies.
		{"a list misses an acknowledged todo", h(create(1, 0, 10), create(2, 0, 10), list(20, 30, 2)), false, "the list misses c1=…000001 (acknowledged before the list began)"},
		{"a list shows a deleted todo", h(create(1, 0, 10), del(1, ok, 20, 30), list(40, 50, 1)), false, "the list shows c1=…000001, which the model does not have (its delete acknowledged before the list began)"},
		{"a list goes back in time", h(failedCreate(1, 0, 10), list(20, 30, 1), list(40, 50)), false, "the list misses c1"},
		{"a list goes back in time across instances", h(create(1, 0, 100), list(10, 20, 1), list(30, 40)), false, "the list misses c1"},
		{"a stale list", h(create(1, 0, 10), create(2, 20, 30), del(1, ok, 40, 50), list(60, 70, 1)), false, "the list is a stale state, 2 operations back: the state after [0.000s → 0.010s] create(c1"},
		{"a todo from nowhere", h(create(1, 0, 10), list(20, 30, 1, 9)), false, "the list shows c9"},
		{"two deletes of one todo both succeed", h(create(1, 0, 10), del(1, ok, 20, 40), del(1, ok, 25, 35)), false, "delete("},
		{"a delete of an existing todo says not-found", h(create(1, 0, 10), del(1, refused, 20, 30)), false, "not-found"},
		{"a list out of id order", h(create(1, 0, 10), create(2, 0, 10), list(20, 30, 2, 1)), false, "not in id order"},
		{"an own list with another owner's todo", h(create(1, 0, 10), func() *op {
			o := list(20, 30, 1)
			o.todos = append(o.todos, todo{ID: id(2), Content: content(2), OwnerID: "bob"})
			return o
		}()), false, "the list shows c2"},
		{"a create whose todo is stored with other content", h(create(1, 0, 10), func() *op {
			o := list(20, 30)
			o.todos = append(o.todos, todo{ID: id(1), Content: "other", OwnerID: "alice"})
			return o
		}()), false, "the list misses c1"},
		{"a deleted todo answered with other details", h(create(1, 0, 10), func() *op {
			o := del(1, ok, 20, 30)
			o.got.Content = "other"
			return o
		}()), false, "delete("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := checkLinearizable(c.ops, time.Time{}, 10*time.Second)
			switch {
			case c.legal && v.result != porcupine.Ok:
				t.Errorf("verdict %s, want Ok; report:\n%s", v.result, v.report)
			case !c.legal && v.result != porcupine.Illegal:
				t.Errorf("verdict %s, want Illegal", v.result)
			case !c.legal && !strings.Contains(v.report, c.want):
				t.Errorf("the report does not say %q:\n%s", c.want, v.report)
			case !c.legal && !strings.Contains(v.report, "the history around it"):
				t.Errorf("the report does not print the history:\n%s", v.report)
			}
		})
	}
	// What is left out, and why.
	v := checkLinearizable(h(failedCreate(1, 0, 10), failedCreate(2, 0, 10), list(20, 30, 2),
		&op{kind: opListOwn, subject: "alice", start: at(40), end: at(50), outcome: failed},
		&op{kind: opListOwn, subject: "alice", start: at(40), end: at(50), outcome: ok, todos: []todo{td(2)}}), time.Time{}, time.Second)
	if v.hist.unseenCreates != 1 || v.hist.failedLists != 1 || v.hist.partialLists != 1 || len(v.hist.ops) != 2 {
		t.Errorf("left out: %d unseen creates, %d failed and %d partial lists, %d operations kept; want 1, 1, 1, 2",
			v.hist.unseenCreates, v.hist.failedLists, v.hist.partialLists, len(v.hist.ops))
	}
}

// A history of many concurrent operations, failed ones included (whose
// end is unknown, the costliest for the search), is found legal within
// the checker's bound: the nemesis test's histories are of this size.
func TestLinearizableCheckerScale(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := newRand(7)
	var ops []*op
	for _, owner := range []string{"a", "b", "c", "d"} {
		live := map[int]bool{}
		var ids []int
		now := 0
		for n := range 1000 {
			at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
			now += rng.IntN(4)
			dur := 1 + rng.IntN(20)
			o := &op{subject: owner, start: at(now), end: at(now + dur), outcome: ok}
			switch r := rng.Float64(); {
			case r < 0.45 || len(ids) == 0:
				o.kind, o.content, o.id = opCreate, fmt.Sprintf("%s-%d", owner, n), fmt.Sprintf("%026d", n)
				o.got = &todo{ID: o.id, Content: o.content, OwnerID: owner}
				if rng.IntN(20) == 0 {
					o.outcome, o.id, o.got = failed, "", nil // and it did not happen
				} else {
					live[n] = true
					ids = append(ids, n)
				}
			case r < 0.75:
				k := ids[rng.IntN(len(ids))]
				o.kind, o.id = opDelete, fmt.Sprintf("%026d", k)
				if live[k] {
					delete(live, k)
					o.got = &todo{ID: o.id, Content: fmt.Sprintf("%s-%d", owner, k), OwnerID: owner}
					if rng.IntN(20) == 0 {
						o.outcome, o.got = failed, nil // and it happened
					}
				} else {
					o.outcome = refused
				}
			default:
				o.kind, o.complete = opListOwn, true
				for _, k := range ids {
					if live[k] {
						o.todos = append(o.todos, todo{ID: fmt.Sprintf("%026d", k), Content: fmt.Sprintf("%s-%d", owner, k), OwnerID: owner})
					}
				}
			}
			// Sequential in effect (each operation takes effect at its
			// start), overlapping in time.
			ops = append(ops, o)
		}
	}
	// The time it takes is logged, not judged (timing belongs in
	// benchmarks); the checker's own bound of 60s makes a history it cannot
	// decide fail as Unknown.
	v := checkLinearizable(ops, time.Time{}, time.Minute)
	if v.result != porcupine.Ok {
		t.Fatalf("verdict %s on a legal history of %d operations; report:\n%s", v.result, len(ops), v.report)
	}
	t.Logf("%d operations in %d partitions checked in %s", len(v.hist.ops), v.partitions, v.took.Round(time.Millisecond))
}
