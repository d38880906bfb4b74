package cluster

import (
	"strings"
	"testing"
	"time"
)

// The history check must catch each anomaly the cluster test is there to
// find, and accept what an error allows (an ambiguous create that happened,
// an ambiguous delete that did not). It runs without etcd or a gateway.
func TestCheckHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	create := func(content, id string, from, to int) *op {
		o := &op{kind: opCreate, client: "w", subject: "alice", content: content, start: at(from), end: at(to), outcome: failed}
		if id != "" {
			o.outcome, o.id, o.got = ok, id, &todo{ID: id, Content: content, OwnerID: "alice"}
		}
		return o
	}
	del := func(id string, out outcome, from, to int) *op {
		o := &op{kind: opDelete, client: "w", subject: "alice", id: id, start: at(from), end: at(to), outcome: out}
		if out == ok {
			o.got = &todo{ID: id, Content: "c-" + id, OwnerID: "alice"}
		}
		return o
	}
	list := func(kind opKind, from, to int, ts ...todo) *op {
		return &op{kind: kind, client: "w", subject: "alice", start: at(from), end: at(to), outcome: ok, complete: true, todos: ts}
	}
	td := func(id string) todo { return todo{ID: id, Content: "c-" + id, OwnerID: "alice"} }
	final := func(ts ...todo) finalState {
		return finalState{tenant: ts, owners: map[string][]todo{"alice": ts}}
	}
	// base: 1 acknowledged, 2 acknowledged then deleted, 3 ambiguous (and
	// it happened), 4 acknowledged with an ambiguous delete (that did not
	// happen).
	base := func() []*op {
		return []*op{
			create("c-1", "1", 0, 10), create("c-2", "2", 0, 10), create("c-3", "", 0, 10), create("c-4", "4", 0, 10),
			del("2", ok, 20, 30), del("4", failed, 20, 30),
			list(opList, 40, 50, td("1"), td("3"), td("4")),
			list(opListOwn, 40, 50, td("1"), td("3"), td("4")),
		}
	}
	cases := []struct {
		name  string
		edit  func([]*op) []*op
		final finalState
		want  string // a problem kind, "" for none
	}{
		{"consistent", nil, final(td("1"), td("3"), td("4")), ""},
		{"an ambiguous delete that happened", nil, final(td("1"), td("3")), ""},
		{"acknowledged create lost", nil, final(td("3"), td("4")), pLostCreate},
		{"acknowledged delete back", nil, final(td("1"), td("2"), td("3"), td("4")), pDeleteBack},
		{"never attempted", nil, final(td("1"), td("3"), td("4"), td("9")), pNeverAttempted},
		{"listed twice", nil, final(td("1"), td("1"), td("3"), td("4")), pDuplicate},
		{"two todos for one create", nil, final(td("1"), td("3"), td("4"), todo{ID: "1b", Content: "c-1", OwnerID: "alice"}), pSecondTodo},
		{"owner list differs", nil, finalState{tenant: []todo{td("1"), td("3"), td("4")}, owners: map[string][]todo{"alice": {td("1"), td("4")}}}, pOwnerMismatch},
		{"stale list", func(ops []*op) []*op {
			return append(ops, list(opListOwn, 40, 50, td("3"), td("4")))
		}, final(td("1"), td("3"), td("4")), pListMissing},
		{"deleted todo listed after the acknowledgement", func(ops []*op) []*op {
			return append(ops, list(opList, 40, 50, td("1"), td("2"), td("4")))
		}, final(td("1"), td("3"), td("4")), pDeleteBack},
		{"own list with a foreign todo", func(ops []*op) []*op {
			return append(ops, list(opListOwn, 40, 50, td("1"), td("4"), todo{ID: "3", Content: "c-3", OwnerID: "bob"}))
		}, final(td("1"), td("3"), td("4")), pForeignOwn},
		{"refused delete of an existing todo", func(ops []*op) []*op {
			return append(ops, del("1", refused, 60, 70))
		}, final(td("1"), td("3"), td("4")), pRefusedExisting},
		{"deleted twice", func(ops []*op) []*op {
			return append(ops, del("2", ok, 60, 70))
		}, final(td("1"), td("3"), td("4")), pDeletedTwice},
		{"a 500", func(ops []*op) []*op {
			o := create("c-5", "", 60, 70)
			o.status = 500
			return append(ops, o)
		}, final(td("1"), td("3"), td("4")), pHTTPStatus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops := base()
			if c.edit != nil {
				ops = c.edit(ops)
			}
			p := checkHistory(ops, c.final)
			switch {
			case c.want == "" && p.total() != 0:
				t.Errorf("problems in a consistent history:\n%s", p)
			case c.want != "" && p.count[c.want] == 0:
				t.Errorf("no %q found; found:\n%s", c.want, p)
			}
		})
	}
}

func TestWriteOutage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c := func(from, to int, out outcome) *op {
		return &op{kind: opCreate, start: at(from), end: at(to), outcome: out}
	}
	ops := []*op{c(0, 100, ok), c(900, 1200, ok), c(1000, 2500, failed), c(1000, 2400, ok), c(1100, 1900, ok), c(2000, 2100, ok)}
	rec, recovered, gap, _ := writeOutage(ops, at(1000), at(0), at(3000))
	if !recovered || rec != 900*time.Millisecond {
		t.Errorf("recovery %v %v, want 900ms (the create started at 1100ms, acknowledged at 1900ms)", rec, recovered)
	}
	if gap != 1100*time.Millisecond {
		t.Errorf("max gap %v, want 1.1s (100ms to 1200ms)", gap)
	}
	if s := shorten("dial tcp 127.0.0.1:4242: connect: connection refused"); strings.Contains(s, "4242") {
		t.Errorf("shorten kept the port: %q", s)
	}
}
