package cleanup_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cleanup"
	"github.com/offline-push/offline-push/shared/push"
)

// record is a fake expired record: what removing it does.
type record struct {
	id      string
	outcome string // "" cleared/removed, "deleted"/"orphan", "conflict", "fail"
}

// pagedRecords serves records per shard in pages of pageSize, like an index
// query, and records what was removed. It serves both store interfaces.
type pagedRecords struct {
	shards   map[int][]record
	pageSize int
	removed  []string
	pages    int
	// afterRemove, when set, runs after each removal (to end a context).
	afterRemove func()
}

func (p *pagedRecords) page(shard int, cursor string) ([]record, string, error) {
	p.pages++
	start := 0
	if cursor != "" {
		fmt.Sscan(cursor, &start)
	}
	recs := p.shards[shard]
	end := min(start+p.pageSize, len(recs))
	next := ""
	if end < len(recs) {
		next = fmt.Sprint(end)
	}
	return recs[start:end], next, nil
}

func (p *pagedRecords) remove(r record) (bool, error) {
	if p.afterRemove != nil {
		defer p.afterRemove()
	}
	switch r.outcome {
	case "conflict":
		return false, fmt.Errorf("record %s: %w", r.id, push.ErrConflict)
	case "fail":
		return false, errors.New("the store is down")
	}
	p.removed = append(p.removed, r.id)
	return r.outcome == "deleted" || r.outcome == "orphan", nil
}

func (p *pagedRecords) ExpiredDND(_ context.Context, shard int, _ time.Time, cursor string) ([]record, string, error) {
	return p.page(shard, cursor)
}

func (p *pagedRecords) ClearDND(_ context.Context, r record) (bool, error) { return p.remove(r) }

func (p *pagedRecords) StaleTokens(_ context.Context, shard int, _ time.Time, cursor string) ([]record, string, error) {
	return p.page(shard, cursor)
}

func (p *pagedRecords) RemoveStaleToken(_ context.Context, r record) (bool, error) {
	return p.remove(r)
}

// boundRecorder remembers the bounds each kind of query was given.
type boundRecorder struct {
	pagedRecords
	dndBefore, tokenBefore time.Time
}

func (b *boundRecorder) ExpiredDND(ctx context.Context, shard int, before time.Time, cursor string) ([]record, string, error) {
	b.dndBefore = before
	return b.pagedRecords.ExpiredDND(ctx, shard, before, cursor)
}

func (b *boundRecorder) StaleTokens(ctx context.Context, shard int, before time.Time, cursor string) ([]record, string, error) {
	b.tokenBefore = before
	return b.pagedRecords.StaleTokens(ctx, shard, before, cursor)
}

func TestRunCounts(t *testing.T) {
	dnd := &pagedRecords{pageSize: 2, shards: map[int][]record{
		0: {{id: "a"}, {id: "b", outcome: "deleted"}, {id: "c", outcome: "conflict"}},
		2: {{id: "d"}},
	}}
	tok := &pagedRecords{pageSize: 2, shards: map[int][]record{
		1: {{id: "t1"}, {id: "t2", outcome: "orphan"}},
		3: {{id: "t3", outcome: "conflict"}, {id: "t4"}, {id: "t5"}},
	}}
	c := cleanup.New[record, record](dnd, tok, cleanup.Config{Shards: 4})
	got, err := c.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := cleanup.Counts{
		DNDExpired: 3, ConversationsDeleted: 1, TokensRemoved: 3, OrphanIndexRemoved: 1, Conflicts: 2,
		// 4 shards per kind, one page each, plus one more page in dnd shard 0
		// and token shard 3.
		PagesRead: 10, RecordsRead: 9, Complete: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run counts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b", "d"}, dnd.removed); diff != "" {
		t.Errorf("DND removed mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"t1", "t2", "t4", "t5"}, tok.removed); diff != "" {
		t.Errorf("tokens removed mismatch (-want +got):\n%s", diff)
	}
}

func TestRunBounds(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	dnd := &boundRecorder{pagedRecords: pagedRecords{pageSize: 1}}
	tok := &boundRecorder{pagedRecords: pagedRecords{pageSize: 1}}
	c := cleanup.New[record, record](dnd, tok, cleanup.Config{Shards: 1, TokenMaxAge: 48 * time.Hour, Now: func() time.Time { return now }})
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !dnd.dndBefore.Equal(now) {
		t.Errorf("DND bound = %v, want %v", dnd.dndBefore, now)
	}
	if want := now.Add(-48 * time.Hour); !tok.tokenBefore.Equal(want) {
		t.Errorf("token bound = %v, want %v", tok.tokenBefore, want)
	}
}

func TestRunStopsWhenTimeIsShort(t *testing.T) {
	tests := []struct {
		name string
		// ctx returns the context of the run; cancel is called after the
		// first removal.
		ctx         func(t *testing.T) (context.Context, context.CancelFunc)
		wantRemoved []string
	}{
		{
			name: "deadline within the margin: nothing started",
			ctx: func(t *testing.T) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
				t.Cleanup(cancel)
				return ctx, func() {}
			},
			wantRemoved: nil,
		},
		{
			name: "context ends mid-page",
			ctx: func(t *testing.T) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				return ctx, cancel
			},
			wantRemoved: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := tt.ctx(t)
			dnd := &pagedRecords{pageSize: 10, shards: map[int][]record{0: {{id: "a"}, {id: "b"}}}}
			dnd.afterRemove = stop
			tok := &pagedRecords{pageSize: 10, shards: map[int][]record{0: {{id: "t"}}}}
			// A margin of two hours makes a one-hour deadline short; the
			// cancelled context is short whatever the margin.
			margin := time.Millisecond
			if _, ok := ctx.Deadline(); ok {
				margin = 2 * time.Hour
			}
			c := cleanup.New[record, record](dnd, tok, cleanup.Config{Shards: 1, Margin: margin})
			got, err := c.Run(ctx)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.Complete {
				t.Errorf("Run counts Complete = true, want false: %+v", got)
			}
			if diff := cmp.Diff(tt.wantRemoved, dnd.removed); diff != "" {
				t.Errorf("removed mismatch (-want +got):\n%s", diff)
			}
			if len(tok.removed) != 0 {
				t.Errorf("tokens removed = %v, want none", tok.removed)
			}
		})
	}
}

func TestRunStopsOnStoreFailure(t *testing.T) {
	dnd := &pagedRecords{pageSize: 10, shards: map[int][]record{0: {{id: "a"}, {id: "b", outcome: "fail"}, {id: "c"}}}}
	tok := &pagedRecords{pageSize: 10, shards: map[int][]record{0: {{id: "t"}}}}
	c := cleanup.New[record, record](dnd, tok, cleanup.Config{Shards: 1})
	got, err := c.Run(context.Background())
	if err == nil {
		t.Fatal("Run: no error, want the store's failure")
	}
	want := cleanup.Counts{DNDExpired: 1, PagesRead: 1, RecordsRead: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run counts mismatch (-want +got):\n%s", diff)
	}
}
