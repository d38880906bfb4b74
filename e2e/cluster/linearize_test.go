package cluster

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The nemesis test's history is checked with porcupine against a model of
// the todo store, one partition per owner (an owner's operations touch only
// that owner's todos, so each owner's history must be linearizable on its
// own; porcupine checks the partitions in parallel and each stays small).
//
// The model's state is an owner's todos, each as the key "id content
// owner", sorted (ids are fixed-length and sort in creation order, so a
// sorted state is the list the store must answer):
//   - create adds its todo; an id that is already there cannot be created;
//   - delete removes its todo and answers it; a delete of a todo that is not
//     there is not-found (so of two concurrent deletes exactly one succeeds);
//   - list answers exactly the state, in id order: a list that misses an
//     acknowledged todo, shows a deleted one or one never created, or shows
//     less than an earlier list without a delete in between (back in time)
//     has no place in any linearization.
//
// An operation that got an error may or may not have happened, and may
// take effect at any time after it began, also after every other
// operation: as etcd's robustness tests do for failed writes, it becomes a
// porcupine operation whose return time is after the end of the history,
// and the model lets a failed create or delete either take effect or not
// (a failed delete of a todo that is not there changes nothing). A failed
// create's id is not known from its answer; it is the id of the todo some
// list showed with its content (contents are unique per attempt). A failed
// create that no list or delete ever saw is left out: it can always be
// placed after everything else, so leaving it out changes no verdict. A
// failed list, or one that needed more than one page, says nothing and is
// left out too.

// linInput is a porcupine operation's input.
type linInput struct {
	kind  opKind // opCreate, opDelete or opListOwn
	owner string
	key   string // create: the todo's key
	id    string // delete: the id to delete
}

// Results of a model operation.
const (
	linOK       = "ok"
	linNotFound = "not-found"
	linUnknown  = "unknown" // an error: it may have happened or not
)

// linOutput is a porcupine operation's output.
type linOutput struct {
	result string
	key    string   // delete ok: the todo the delete answered
	keys   []string // list: the todos listed, in the order listed
}

// linMeta is what the visualization and the failure report show of an
// operation besides its input and output.
type linMeta struct {
	op *op
}

func todoKey(id, content, owner string) string { return id + " " + content + " " + owner }

// keyID and keyContent take a key apart.
func keyID(key string) string {
	id, _, _ := strings.Cut(key, " ")
	return id
}

func keyContent(key string) string {
	_, rest, _ := strings.Cut(key, " ")
	content, _, _ := strings.Cut(rest, " ")
	return content
}

func findID(state []string, id string) int {
	return slices.IndexFunc(state, func(k string) bool { return keyID(k) == id })
}

// todoModel is the model porcupine checks against.
var todoModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byOwner := map[string][]porcupine.Operation{}
		for _, o := range history {
			owner := o.Input.(linInput).owner
			byOwner[owner] = append(byOwner[owner], o)
		}
		var out [][]porcupine.Operation
		for _, owner := range slices.Sorted(maps.Keys(byOwner)) {
			out = append(out, byOwner[owner])
		}
		return out
	},
	Init: func() any { return []string{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.([]string), input.(linInput), output.(linOutput)
		switch in.kind {
		case opCreate:
			if findID(st, keyID(in.key)) >= 0 {
				return false, st
			}
			next := append(slices.Clone(st), in.key)
			slices.Sort(next)
			return true, next
		case opDelete:
			i := findID(st, in.id)
			switch out.result {
			case linOK:
				if i < 0 || st[i] != out.key {
					return false, st
				}
				return true, slices.Delete(slices.Clone(st), i, i+1)
			case linNotFound:
				return i < 0, st
			default: // unknown: it happened (if the todo was there) or not
				if i < 0 {
					return true, st
				}
				return true, slices.Delete(slices.Clone(st), i, i+1)
			}
		case opListOwn:
			return slices.Equal(st, out.keys), st
		}
		return false, st
	},
	Equal: func(a, b any) bool { return slices.Equal(a.([]string), b.([]string)) },
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		for _, k := range state.([]string) {
			h.Write([]byte(k))
			h.Write([]byte{0})
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch in.kind {
		case opCreate:
			return fmt.Sprintf("create(%s) → %s", describeKey(in.key), out.result)
		case opDelete:
			s := fmt.Sprintf("delete(%s) → %s", in.id, out.result)
			if out.key != "" {
				s += " " + keyContent(out.key)
			}
			return s
		default:
			return fmt.Sprintf("list → %s", describeState(out.keys))
		}
	},
	DescribeState: func(state any) string { return describeState(state.([]string)) },
	DescribeOperationMetadata: func(info any) string {
		m, _ := info.(linMeta)
		if m.op == nil {
			return ""
		}
		return m.op.String()
	},
}

func describeKey(key string) string {
	return keyContent(key) + "=" + shortID(keyID(key))
}

// shortID keeps the random end of an id (its start is the creation time,
// the same for every todo of a second).
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-6:]
	}
	return id
}

func describeState(keys []string) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, keyContent(k))
	}
	return fmt.Sprintf("%d: [%s]", len(keys), strings.Join(parts, " "))
}

// linHistory is a recorded history turned into porcupine operations.
type linHistory struct {
	ops  []porcupine.Operation
	base time.Time
	// Operations left out, by reason.
	unseenCreates, failedLists, partialLists, otherKinds int
}

// toPorcupine turns a recorded history into porcupine operations, their
// times in nanoseconds since base (the start of the first operation when
// base is zero).
func toPorcupine(recorded []*op, base time.Time) linHistory {
	h := linHistory{base: base}
	if len(recorded) == 0 {
		return h
	}
	if h.base.IsZero() {
		h.base = recorded[0].start
		for _, o := range recorded {
			if o.start.Before(h.base) {
				h.base = o.start
			}
		}
	}
	var last time.Time
	for _, o := range recorded {
		if o.end.After(last) {
			last = o.end
		}
	}
	ts := func(t time.Time) int64 { return t.Sub(h.base).Nanoseconds() }
	// After every operation: when an operation that got an error took
	// effect, if it did.
	infinity := ts(last.Add(time.Second))

	// The id each content was given, per owner: from acknowledged creates,
	// then from what the lists showed.
	idOf := map[string]map[string]string{}
	note := func(owner, content, id string) {
		if idOf[owner] == nil {
			idOf[owner] = map[string]string{}
		}
		if _, ok := idOf[owner][content]; !ok {
			idOf[owner][content] = id
		}
	}
	for _, o := range recorded {
		if o.kind == opCreate && o.outcome == ok {
			note(o.subject, o.content, o.id)
		}
	}
	for _, o := range recorded {
		if o.kind == opListOwn && o.outcome == ok {
			for _, td := range o.todos {
				if td.OwnerID == o.subject {
					note(o.subject, td.Content, td.ID)
				}
			}
		}
	}

	for _, o := range recorded {
		in := linInput{kind: o.kind, owner: o.subject}
		var out linOutput
		ret := ts(o.end)
		switch o.kind {
		case opCreate:
			switch {
			case o.outcome == ok:
				in.key, out.result = todoKey(o.id, o.content, o.subject), linOK
			case idOf[o.subject][o.content] != "":
				in.key, out.result, ret = todoKey(idOf[o.subject][o.content], o.content, o.subject), linUnknown, infinity
			default:
				h.unseenCreates++
				continue
			}
		case opDelete:
			in.id = o.id
			switch o.outcome {
			case ok:
				out.result = linOK
				if o.got != nil {
					out.key = todoKey(o.got.ID, o.got.Content, o.got.OwnerID)
				}
			case refused:
				out.result = linNotFound
			default:
				out.result, ret = linUnknown, infinity
			}
		case opListOwn:
			switch {
			case o.outcome != ok:
				h.failedLists++
				continue
			case !o.complete:
				h.partialLists++
				continue
			}
			out.result = linOK
			out.keys = make([]string, len(o.todos))
			for i, td := range o.todos {
				out.keys[i] = todoKey(td.ID, td.Content, td.OwnerID)
			}
		default:
			h.otherKinds++
			continue
		}
		h.ops = append(h.ops, porcupine.Operation{Input: in, Call: ts(o.start), Output: out, Return: ret, Metadata: linMeta{op: o}})
	}
	// Client ids for the visualization, where a client's operations must
	// not overlap: the first lane free when the operation begins.
	order := make([]int, len(h.ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(h.ops[a].Call, h.ops[b].Call) })
	var laneEnd []int64
	for _, i := range order {
		lane := slices.IndexFunc(laneEnd, func(end int64) bool { return end < h.ops[i].Call })
		if lane < 0 {
			lane = len(laneEnd)
			laneEnd = append(laneEnd, 0)
		}
		laneEnd[lane] = h.ops[i].Return
		h.ops[i].ClientId = lane
	}
	return h
}

// linVerdict is porcupine's verdict on a history, with what explains a
// violation.
type linVerdict struct {
	result     porcupine.CheckResult
	info       porcupine.LinearizationInfo
	hist       linHistory
	partitions int
	took       time.Duration
	// report, for a history that is not linearizable: per owner whose
	// history is not, the operation no linearization could take, the
	// model's state before it, and the operations around it.
	report string
}

// checkLinearizable checks a recorded history with porcupine. The report
// gives times in seconds since base (zero: since the first operation).
func checkLinearizable(recorded []*op, base time.Time, timeout time.Duration) linVerdict {
	v := linVerdict{hist: toPorcupine(recorded, base)}
	began := time.Now()
	v.result, v.info = porcupine.CheckOperationsVerbose(todoModel, v.hist.ops, timeout)
	v.took = time.Since(began)
	parts := todoModel.Partition(v.hist.ops)
	v.partitions = len(parts)
	if v.result == porcupine.Illegal {
		v.report = explain(parts, v.info.PartialLinearizations())
	}
	return v
}

// explain describes, for each partition porcupine could not linearize,
// where its longest partial linearization stops.
func explain(parts [][]porcupine.Operation, partials [][][]int) string {
	var b strings.Builder
	for p, ops := range parts {
		if p >= len(partials) {
			break
		}
		var longest []int
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(ops) {
			continue
		}
		owner := ops[0].Input.(linInput).owner
		// The state after the longest linearizable prefix.
		state := todoModel.Init()
		done := make([]bool, len(ops))
		states := []any{state} // states[k]: after the first k of longest
		for _, i := range longest {
			_, state = todoModel.Step(state, ops[i].Input, ops[i].Output)
			done[i] = true
			states = append(states, state)
		}
		// The culprit: the first operation (by invocation) with a known
		// result that the prefix could not take.
		culprit := -1
		for i, o := range ops {
			if done[i] || o.Output.(linOutput).result == linUnknown {
				continue
			}
			if culprit < 0 || o.Call < ops[culprit].Call {
				culprit = i
			}
		}
		if culprit < 0 {
			for i := range ops {
				if !done[i] && (culprit < 0 || ops[i].Call < ops[culprit].Call) {
					culprit = i
				}
			}
		}
		c := ops[culprit]
		fmt.Fprintf(&b, "owner %s: %d of %d operations linearized; none can take next:\n  %s\n", owner, len(longest), len(ops), describeLinOp(c))
		fmt.Fprintf(&b, "  the model's state before it: %s\n", describeState(state.([]string)))
		if in := c.Input.(linInput); in.kind == opDelete {
			fmt.Fprintf(&b, "  the operations on that todo: %s\n", lastTouch(ops, done, findKey(ops, in.id)))
		} else if in.kind == opCreate {
			fmt.Fprintf(&b, "  the operations on that todo: %s\n", lastTouch(ops, done, in.key))
		}
		if in, out := c.Input.(linInput), c.Output.(linOutput); in.kind == opListOwn {
			st := state.([]string)
			// before says whether an operation on the todo with a known
			// result ended before the list began: then the list had to
			// see it.
			before := func(k string, kind opKind) bool {
				return slices.ContainsFunc(ops, func(o porcupine.Operation) bool {
					in, res := o.Input.(linInput), o.Output.(linOutput).result
					return in.kind == kind && res == linOK && o.Return < c.Call &&
						(in.key == k || (kind == opDelete && in.id == keyID(k)))
				})
			}
			for _, k := range st {
				if !slices.Contains(out.keys, k) {
					note := ""
					if before(k, opCreate) {
						note = " (acknowledged before the list began)"
					}
					fmt.Fprintf(&b, "  the list misses %s%s: %s\n", describeKey(k), note, lastTouch(ops, done, k))
				}
			}
			for _, k := range out.keys {
				if !slices.Contains(st, k) {
					note := ""
					if before(k, opDelete) {
						note = " (its delete acknowledged before the list began)"
					}
					fmt.Fprintf(&b, "  the list shows %s, which the model does not have%s: %s\n", describeKey(k), note, lastTouch(ops, done, k))
				}
			}
			if len(out.keys) == len(st) && !slices.Equal(out.keys, st) && slices.Equal(slices.Sorted(slices.Values(out.keys)), st) {
				fmt.Fprintf(&b, "  the list is not in id order\n")
			}
			// A stale read: the list is an earlier state of the prefix.
			for k := len(states) - 2; k >= 0; k-- {
				if slices.Equal(states[k].([]string), out.keys) {
					when := "the initial state"
					if k > 0 {
						prev := ops[longest[k-1]]
						when = fmt.Sprintf("the state after %s", describeLinOp(prev))
					}
					fmt.Fprintf(&b, "  the list is a stale state, %d operations back: %s\n", len(states)-1-k, when)
					break
				}
			}
		}
		// The history around it: what overlapped it or ended within 2s
		// before it began, at most 40 operations.
		var around []int
		for i, o := range ops {
			if o.Return >= c.Call-2e9 && o.Call <= c.Return {
				around = append(around, i)
			}
		}
		slices.SortFunc(around, func(a, b int) int { return cmp.Compare(ops[a].Call, ops[b].Call) })
		if len(around) > 40 {
			k := slices.Index(around, culprit)
			lo := max(0, min(k-30, len(around)-40))
			around = around[lo : lo+40]
		}
		fmt.Fprintf(&b, "  the history around it (%d operations; * = in the linearized prefix):\n", len(around))
		for _, i := range around {
			mark := " "
			if done[i] {
				mark = "*"
			}
			if i == culprit {
				mark = ">"
			}
			fmt.Fprintf(&b, "   %s %s\n", mark, describeLinOp(ops[i]))
		}
	}
	return b.String()
}

// findKey is the key of the todo with that id, from its create (or the id
// alone if no create of it is in the history).
func findKey(ops []porcupine.Operation, id string) string {
	for _, o := range ops {
		if in := o.Input.(linInput); in.kind == opCreate && keyID(in.key) == id {
			return in.key
		}
	}
	return id
}

// lastTouch names the operations of a partition that concern a todo.
func lastTouch(ops []porcupine.Operation, done []bool, key string) string {
	var out []string
	for i, o := range ops {
		in := o.Input.(linInput)
		if (in.kind == opCreate && in.key == key) || (in.kind == opDelete && in.id == keyID(key)) {
			s := describeLinOp(o)
			if done[i] {
				s += " (linearized)"
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "no create or delete of it in the history"
	}
	return strings.Join(out, "; ")
}

// describeLinOp is one operation with its times relative to the start of
// the history and the recorded details (instance, error).
func describeLinOp(o porcupine.Operation) string {
	ret := "∞"
	if out := o.Output.(linOutput); out.result != linUnknown {
		ret = fmt.Sprintf("%.3fs", float64(o.Return)/1e9)
	}
	s := fmt.Sprintf("[%.3fs → %s] %s", float64(o.Call)/1e9, ret, todoModel.DescribeOperation(o.Input, o.Output))
	if m, ok := o.Metadata.(linMeta); ok && m.op != nil {
		s += fmt.Sprintf("  (%s via %s", m.op.client, m.op.via)
		if m.op.errText != "" {
			s += ": " + shorten(m.op.errText)
		}
		s += ")"
	}
	return s
}
