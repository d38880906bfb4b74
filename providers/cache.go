package providers

import (
	"container/list"
	"sync"
	"time"
)

// lru is a bounded map from a token hash to a value that expires at a
// given time. Keys are SHA-256 digests, so raw tokens never sit in memory
// longer than a request.
type lru[V any] struct {
	mu  sync.Mutex
	max int
	ll  *list.List // front = most recently used
	m   map[[32]byte]*list.Element
}

type lruEntry[V any] struct {
	key [32]byte
	val V
	exp time.Time
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: make(map[[32]byte]*list.Element)}
}

func (c *lru[V]) get(k [32]byte, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.m[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !now.Before(e.exp) {
		c.ll.Remove(el)
		delete(c.m, k)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

func (c *lru[V]) put(k [32]byte, v V, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		e := el.Value.(*lruEntry[V])
		e.val, e.exp = v, exp
		c.ll.MoveToFront(el)
		return
	}
	c.m[k] = c.ll.PushFront(&lruEntry[V]{key: k, val: v, exp: exp})
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.m, el.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
