package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd"
	"github.com/todo-gateway/todo-gateway/store/storetest"
)

// An import whose transaction committed but whose answer was lost is
// retried and recognised: every todo once, in both indexes, and counted as
// added; one that never reached etcd is simply sent again. With half the
// todos already there, the retry finds the other half missing, so the lost
// attempt wrote nothing and only that half counts.
func TestImportAmbiguousCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plan    []fault
		present int // of the 100 todos, already in the store
		want    int // added
	}{
		{"committed, answer lost", []fault{failAfter}, 0, 100},
		{"never sent", []fault{failBefore}, 0, 100},
		{"lost twice", []fault{failAfter, failBefore}, 0, 100},
		// 100 todos are two transactions: the second one's answer is lost.
		{"second transaction lost", []fault{pass, failAfter}, 0, 100},
		{"half there, never sent", []fault{failBefore}, 50, 50},
		// The first transaction (63 todos) is resolved, the second is not
		// started, and Import says so.
		{"caller gives up", []fault{failAfterStop}, 0, 63},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, plain, kv := faultStore(t, etcd.Options{})
			todos := make([]store.Todo, 100)
			for i := range todos {
				todos[i] = storetest.Importable(t, "alice", fmt.Sprint("todo ", i))
			}
			if _, err := plain.Import(context.Background(), "acme", todos[:tc.present]); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kv.plan = tc.plan
			if tc.plan[0] == failAfterStop {
				kv.stop = cancel
			}
			added, err := s.Import(ctx, "acme", todos)
			if wantErr := ctx.Err(); added != tc.want || !errors.Is(err, wantErr) {
				t.Fatalf("Import: got %d, %v; want %d added, error %v", added, err, tc.want, wantErr)
			}
			got := list(t, plain, "")
			if len(got) != tc.present+tc.want {
				t.Errorf("got %d todos stored, want %d", len(got), tc.present+tc.want)
			}
			if owned := list(t, plain, "alice"); len(owned) != len(got) {
				t.Errorf("owner index lists %d todos, the id index %d", len(owned), len(got))
			}
		})
	}
}
