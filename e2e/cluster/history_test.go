package cluster

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// finalState is what the tenant holds once the faults are over: the whole
// tenant's list and each subject's own list, every page.
type finalState struct {
	tenant []todo
	owners map[string][]todo
}

// problems collects what the check finds, by kind, with the first few
// examples of each.
type problems struct {
	count    map[string]int
	examples map[string][]string
}

func (p *problems) add(kind, format string, args ...any) {
	if p.count == nil {
		p.count, p.examples = map[string]int{}, map[string][]string{}
	}
	p.count[kind]++
	if len(p.examples[kind]) < 5 {
		p.examples[kind] = append(p.examples[kind], fmt.Sprintf(format, args...))
	}
}

func (p *problems) total() int {
	n := 0
	for _, c := range p.count {
		n += c
	}
	return n
}

func (p *problems) String() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p.count)) {
		fmt.Fprintf(&b, "%s: %d\n", k, p.count[k])
		for _, e := range p.examples[k] {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	return b.String()
}

// Kinds of problems the check reports.
const (
	pLostCreate      = "acknowledged create missing from the final state"
	pListMissing     = "acknowledged create missing from a list that started after the acknowledgement"
	pDeleteBack      = "acknowledged delete came back"
	pNeverAttempted  = "todo that was never attempted"
	pWrongOwner      = "todo owned by someone else than the creator"
	pDuplicate       = "todo listed twice"
	pSecondTodo      = "a second todo for one create"
	pForeignOwn      = "own list shows another owner's todo"
	pOwnerMismatch   = "owner's list differs from the tenant's list"
	pBadAnswer       = "acknowledged answer does not match the request"
	pDeletedTwice    = "one todo deleted twice"
	pRefusedExisting = "delete of an existing own todo refused"
	pHTTPStatus      = "gateway answered a non-200 HTTP status"
)

// checkHistory checks the recorded operations and the final state against
// what a durable, linearizable store must give. An operation that got an
// error may have happened or not; everything acknowledged must hold.
func checkHistory(ops []*op, final finalState) *problems {
	p := &problems{}
	creates := map[string]*op{}     // content → the create that sent it
	acked := map[string]*op{}       // id → the acknowledged create
	deletes := map[string][]*op{}   // id → every delete of it
	ackedDelete := map[string]*op{} // id → the first acknowledged delete
	var ackedCreates, lists []*op
	for _, o := range ops {
		if o.status != 0 {
			p.add(pHTTPStatus, "%v", o)
		}
		switch o.kind {
		case opCreate:
			creates[o.content] = o
			if o.outcome != ok {
				continue
			}
			if prev := acked[o.id]; prev != nil {
				p.add(pSecondTodo, "id %s answered to two creates: %v and %v", o.id, prev, o)
			}
			acked[o.id] = o
			ackedCreates = append(ackedCreates, o)
			if o.got.Content != o.content || o.got.OwnerID != o.subject {
				p.add(pBadAnswer, "%v answered %+v", o, *o.got)
			}
		case opDelete:
			deletes[o.id] = append(deletes[o.id], o)
			if o.outcome != ok {
				continue
			}
			if prev := ackedDelete[o.id]; prev != nil {
				p.add(pDeletedTwice, "%v and %v", prev, o)
				if o.end.Before(prev.end) {
					ackedDelete[o.id] = o
				}
			} else {
				ackedDelete[o.id] = o
			}
		case opList, opListOwn:
			if o.outcome == ok {
				lists = append(lists, o)
			}
		}
	}
	for id, d := range ackedDelete {
		if c := acked[id]; c != nil && (d.got.Content != c.content || d.got.OwnerID != c.subject) {
			p.add(pBadAnswer, "%v answered details %+v, the create was %v", d, *d.got, c)
		}
	}
	slices.SortFunc(ackedCreates, func(a, b *op) int { return a.end.Compare(b.end) })

	// deleteBefore says whether some delete of id that may have happened
	// (not a refused one) started before t: after it, the todo may be gone.
	deleteBefore := func(id string, t time.Time) bool {
		for _, d := range deletes[id] {
			if d.outcome != refused && d.start.Before(t) {
				return true
			}
		}
		return false
	}
	// valid checks one listed todo: attempted by its owner, the id of its
	// create if that was acknowledged, not deleted (with an
	// acknowledgement) before the list started.
	valid := func(t todo, listStart time.Time, where string) {
		c := creates[t.Content]
		if c == nil {
			p.add(pNeverAttempted, "%+v in %s", t, where)
			return
		}
		if c.subject != t.OwnerID {
			p.add(pWrongOwner, "%+v in %s, created by %v", t, where, c)
		}
		if c.outcome == ok && c.id != t.ID {
			p.add(pSecondTodo, "%+v in %s, the create %v answered %s", t, where, c, c.id)
		}
		if d := ackedDelete[t.ID]; d != nil && d.end.Before(listStart) {
			p.add(pDeleteBack, "%+v in %s, deleted by %v", t, where, d)
		}
	}
	noDuplicates := func(ts []todo, where string) map[string]bool {
		seen := map[string]bool{}
		for _, t := range ts {
			if seen[t.ID] {
				p.add(pDuplicate, "%+v in %s", t, where)
			}
			seen[t.ID] = true
		}
		return seen
	}

	// Every list answered during the run.
	for _, l := range lists {
		where := l.String()
		seen := noDuplicates(l.todos, where)
		for _, t := range l.todos {
			if l.kind == opListOwn && t.OwnerID != l.subject {
				p.add(pForeignOwn, "%+v in %s", t, where)
			}
			valid(t, l.start, where)
		}
		if !l.complete {
			continue
		}
		for _, c := range ackedCreates {
			if !c.end.Before(l.start) {
				break
			}
			if l.kind == opListOwn && c.subject != l.subject {
				continue
			}
			if !seen[c.id] && !deleteBefore(c.id, l.end) {
				p.add(pListMissing, "%s from %s, acknowledged %s before it started by %v",
					c.id, where, l.start.Sub(c.end).Round(time.Millisecond), c)
			}
		}
	}

	// Deletes refused although the todo was there.
	for id, ds := range deletes {
		c := acked[id]
		if c == nil {
			continue
		}
		for _, r := range ds {
			if r.outcome != refused || r.subject != c.subject || !c.end.Before(r.start) {
				continue
			}
			other := false
			for _, d := range ds {
				other = other || (d != r && d.outcome != refused && d.start.Before(r.end))
			}
			if !other {
				p.add(pRefusedExisting, "%v (created by %v, no other delete of it)", r, c)
			}
		}
	}

	// The final state.
	far := time.Now().Add(time.Hour)
	inTenant := noDuplicates(final.tenant, "the final tenant list")
	for _, t := range final.tenant {
		valid(t, far, "the final tenant list")
	}
	for _, c := range ackedCreates {
		if !inTenant[c.id] && !deleteBefore(c.id, far) {
			p.add(pLostCreate, "%s of %v", c.id, c)
		}
	}
	byOwner := map[string]map[string]bool{}
	for _, t := range final.tenant {
		if byOwner[t.OwnerID] == nil {
			byOwner[t.OwnerID] = map[string]bool{}
		}
		byOwner[t.OwnerID][t.ID] = true
	}
	for _, owner := range slices.Sorted(maps.Keys(final.owners)) {
		own := final.owners[owner]
		where := "the final list of " + owner
		seen := noDuplicates(own, where)
		for _, t := range own {
			if t.OwnerID != owner {
				p.add(pForeignOwn, "%+v in %s", t, where)
			}
			if !byOwner[owner][t.ID] {
				p.add(pOwnerMismatch, "%+v in %s, not in the tenant's", t, where)
			}
		}
		for id := range byOwner[owner] {
			if !seen[id] {
				p.add(pOwnerMismatch, "%s of %s in the tenant's list, not in the owner's", id, owner)
			}
		}
	}
	for owner := range byOwner {
		if _, listed := final.owners[owner]; !listed {
			p.add(pOwnerMismatch, "the tenant's list has todos of %s, whose own list was not read", owner)
		}
	}
	return p
}

// figures summarises a history for the log.
type figures struct {
	byKind    map[string]int // "create ok", "delete error", …
	errors    map[string]int // error texts, shortened
	served    map[string]int // instance → operations it answered (any page)
	ackCreate int
	ackDelete int
}

func summarize(ops []*op) figures {
	f := figures{byKind: map[string]int{}, errors: map[string]int{}, served: map[string]int{}}
	for _, o := range ops {
		f.byKind[string(o.kind)+" "+string(o.outcome)]++
		for _, s := range o.served {
			f.served[s]++
		}
		if o.outcome == ok && o.kind == opCreate {
			f.ackCreate++
		}
		if o.outcome == ok && o.kind == opDelete {
			f.ackDelete++
		}
		if o.outcome == failed {
			f.errors[shorten(o.errText)]++
		}
	}
	return f
}

// shorten keeps the start of an error text, without ids and addresses that
// would make every text unique.
func shorten(s string) string {
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.ContainsAny(f, "0123456789") {
			fields[i] = "…"
		}
	}
	s = strings.Join(fields, " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// top lists a count map, largest first.
func top(m map[string]int, n int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(m[b]-m[a], strings.Compare(a, b)) })
	var b strings.Builder
	for i, k := range keys {
		if i == n {
			fmt.Fprintf(&b, "  … and %d more kinds\n", len(keys)-n)
			break
		}
		fmt.Fprintf(&b, "  %6d  %s\n", m[k], k)
	}
	return b.String()
}

// writeOutage is the time from at until the end of the first acknowledged
// create that started at or after it, and the largest gap between the ends
// of two consecutive acknowledged creates in [from, to].
func writeOutage(ops []*op, at, from, to time.Time) (recovery time.Duration, recovered bool, maxGap time.Duration, gapAt time.Time) {
	var ends []time.Time
	for _, o := range ops {
		if o.kind != opCreate || o.outcome != ok {
			continue
		}
		if !o.start.Before(at) && (!recovered || o.end.Sub(at) < recovery) {
			recovery, recovered = o.end.Sub(at), true
		}
		if !o.end.Before(from) && !o.end.After(to) {
			ends = append(ends, o.end)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	for i := 1; i < len(ends); i++ {
		if g := ends[i].Sub(ends[i-1]); g > maxGap {
			maxGap, gapAt = g, ends[i-1]
		}
	}
	return recovery, recovered, maxGap, gapAt
}

// ambiguity counts the operations that got an error and, from the final
// state, how many of them had happened after all.
func ambiguity(ops []*op, final finalState) (creates, createsHappened, deletes, deletesHappened int) {
	contents, ids := map[string]bool{}, map[string]bool{}
	for _, t := range final.tenant {
		contents[t.Content], ids[t.ID] = true, true
	}
	deletedOK := map[string]bool{}
	for _, o := range ops {
		if o.kind == opDelete && o.outcome == ok {
			deletedOK[o.id] = true
		}
	}
	for _, o := range ops {
		switch {
		case o.outcome != failed:
		case o.kind == opCreate:
			creates++
			if contents[o.content] {
				createsHappened++
			}
		case o.kind == opDelete && !deletedOK[o.id]:
			// Deleted for sure only if no later delete of it succeeded.
			deletes++
			if !ids[o.id] {
				deletesHappened++
			}
		}
	}
	return creates, createsHappened, deletes, deletesHappened
}

// dump writes the history as JSON lines, one operation and its answer a
// line, for reading after a failure.
func dump(path string, ops []*op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, o := range ops {
		rec := map[string]any{
			"client": o.client, "subject": o.subject, "kind": o.kind, "via": o.via, "served": o.served,
			"start": o.start, "end": o.end, "outcome": o.outcome,
		}
		for k, v := range map[string]any{"error": o.errText, "content": o.content, "id": o.id} {
			if v != "" {
				rec[k] = v
			}
		}
		if o.status != 0 {
			rec["status"] = o.status
		}
		if o.got != nil {
			rec["todo"] = o.got
		}
		if o.kind == opList || o.kind == opListOwn {
			ids := make([]string, len(o.todos))
			for i, t := range o.todos {
				ids[i] = t.ID
			}
			rec["listed"], rec["complete"] = ids, o.complete
		}
		if err := enc.Encode(rec); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
