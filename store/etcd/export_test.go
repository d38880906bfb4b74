package etcd

import (
	"github.com/todo-gateway/todo-gateway/store"
)

// CutWatch ends the cache's watch, as a broken connection would; the cache
// watches again from the revision it applied.
func (s *Store) CutWatch() { s.cache.restart <- struct{}{} }

// HoldWatches makes the cache wait for release before it starts each
// watch. Call it before anything is cached that the hold is meant to miss.
func (s *Store) HoldWatches(release <-chan struct{}) {
	hold := func() { <-release }
	s.cache.beforeWatch.Store(&hold)
}

// CachedTodos is every todo the cache holds, by tenant, in id order, with
// each owner's todos as the owner index has them; markers lists the
// tenants with a marker.
func (s *Store) CachedTodos() (todos map[string][]store.Todo, owners map[string]map[string][]store.Todo, markers []string) {
	c := s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	todos, owners = map[string][]store.Todo{}, map[string]map[string][]store.Todo{}
	if c.data == nil {
		return nil, nil, nil
	}
	for tenant, t := range c.data.tenants {
		if t.marked {
			markers = append(markers, tenant)
		}
		t.all.Ascend(func(todo *store.Todo) bool {
			todos[tenant] = append(todos[tenant], *todo)
			return true
		})
		for owner, tree := range t.owners {
			if owners[tenant] == nil {
				owners[tenant] = map[string][]store.Todo{}
			}
			tree.Ascend(func(todo *store.Todo) bool {
				owners[tenant][owner] = append(owners[tenant][owner], *todo)
				return true
			})
		}
	}
	return todos, owners, markers
}
