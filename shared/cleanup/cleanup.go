// Package cleanup is the scheduled tidy-up: it removes DND durations that
// have ended and push tokens not refreshed for a long time. Readers never
// depend on it, since every expiry is also checked inline, so a run may stop
// early and leave the rest to the next one. Every removal is conditioned on
// the record being as it was read, so cleanup never undoes a concurrent
// write, and running it twice is harmless.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// DNDStore finds and clears expired DND durations. R is the store's record
// type, opaque to the use case.
type DNDStore[R any] interface {
	// ExpiredDND returns one page of durations of shard that ended before
	// before, and the cursor of the next page ("" after the last).
	ExpiredDND(ctx context.Context, shard int, before time.Time, cursor string) ([]R, string, error)
	// ClearDND removes one duration, deleting a conversation record left
	// with nothing (deleted reports that). A record set anew since it was
	// read is left alone with push.ErrConflict.
	ClearDND(ctx context.Context, r R) (deleted bool, err error)
}

// TokenStore finds and removes stale push tokens.
type TokenStore[R any] interface {
	// StaleTokens returns one page of token records of shard not refreshed
	// since before, and the cursor of the next page.
	StaleTokens(ctx context.Context, shard int, before time.Time, cursor string) ([]R, string, error)
	// RemoveStaleToken removes a stale token with its binding, or only its
	// record when no binding holds it any more (orphan reports that). A
	// token refreshed or moved since it was read is left alone with
	// push.ErrConflict.
	RemoveStaleToken(ctx context.Context, r R) (orphan bool, err error)
}

// Config tunes a Cleaner.
type Config struct {
	// Shards is how many index partitions each record kind is spread over.
	Shards int
	// TokenMaxAge is how long a token may go without a refresh before it is
	// removed.
	TokenMaxAge time.Duration
	// Margin is how much of the invocation's time (the context deadline) is
	// kept in reserve: no new page or record is started with less left.
	Margin time.Duration
	// Now is the clock that decides what has expired; nil means time.Now.
	Now func() time.Time
}

// DefaultTokenMaxAge is how long a token may go unrefreshed: apps refresh
// their token on every start, so 270 days of silence means the app is gone.
const DefaultTokenMaxAge = 270 * 24 * time.Hour

// DefaultMargin leaves time to finish the write in flight and to report.
const DefaultMargin = 5 * time.Second

// Counts is what one run did. It is logged once per run and returned as the
// function's result.
type Counts struct {
	DNDExpired           int  `json:"dndExpired"`           // durations removed (conversation deletions included)
	ConversationsDeleted int  `json:"conversationsDeleted"` // conversation records left empty and deleted
	TokensRemoved        int  `json:"tokensRemoved"`        // bindings removed with their index record
	OrphanIndexRemoved   int  `json:"orphanIndexRemoved"`   // index records whose binding had moved on
	Conflicts            int  `json:"conflicts"`            // records changed since read, left alone
	PagesRead            int  `json:"pagesRead"`
	RecordsRead          int  `json:"recordsRead"`
	Complete             bool `json:"complete"` // false when the run stopped early for time
}

// Cleaner runs cleanup over its stores.
type Cleaner[D, T any] struct {
	dnd    DNDStore[D]
	tokens TokenStore[T]
	cfg    Config
}

// New returns a Cleaner. Zero fields of cfg take their defaults (TokenMaxAge
// 270 days, Margin 5 s, Now time.Now; Shards must be set).
func New[D, T any](dnd DNDStore[D], tokens TokenStore[T], cfg Config) *Cleaner[D, T] {
	if cfg.TokenMaxAge <= 0 {
		cfg.TokenMaxAge = DefaultTokenMaxAge
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cleaner[D, T]{dnd: dnd, tokens: tokens, cfg: cfg}
}

// errShort stops a run whose time is running out; it never leaves Run.
var errShort = errors.New("time budget spent")

// Run removes expired DND durations, then stale tokens, shard by shard and
// page by page, until all are done or the context's deadline comes within
// the margin. It returns what it did; an error means a store failed in a way
// a retry in the next run may fix, and the counts still tell what was done.
func (c *Cleaner[D, T]) Run(ctx context.Context) (Counts, error) {
	var n Counts
	now := c.cfg.Now()
	err := c.sweepDND(ctx, now, &n)
	if err == nil {
		err = c.sweepTokens(ctx, now.Add(-c.cfg.TokenMaxAge), &n)
	}
	switch {
	case errors.Is(err, errShort):
		return n, nil
	case err != nil:
		return n, err
	}
	n.Complete = true
	return n, nil
}

func (c *Cleaner[D, T]) sweepDND(ctx context.Context, now time.Time, n *Counts) error {
	return sweep(ctx, c, n, c.dnd.ExpiredDND, now, func(r D) error {
		deleted, err := c.dnd.ClearDND(ctx, r)
		if err != nil {
			return err
		}
		n.DNDExpired++
		if deleted {
			n.ConversationsDeleted++
		}
		return nil
	})
}

func (c *Cleaner[D, T]) sweepTokens(ctx context.Context, before time.Time, n *Counts) error {
	return sweep(ctx, c, n, c.tokens.StaleTokens, before, func(r T) error {
		orphan, err := c.tokens.RemoveStaleToken(ctx, r)
		if err != nil {
			return err
		}
		if orphan {
			n.OrphanIndexRemoved++
		} else {
			n.TokensRemoved++
		}
		return nil
	})
}

// sweep pages through every shard and hands each record to remove. A
// conflict is counted and skipped; any other failure ends the run.
func sweep[R, D, T any](ctx context.Context, c *Cleaner[D, T], n *Counts,
	page func(context.Context, int, time.Time, string) ([]R, string, error),
	before time.Time, remove func(R) error) error {
	for shard := 0; shard < c.cfg.Shards; shard++ {
		cursor := ""
		for {
			if c.short(ctx) {
				return errShort
			}
			recs, next, err := page(ctx, shard, before, cursor)
			if err != nil {
				return fmt.Errorf("cleanup shard %d: %w", shard, err)
			}
			n.PagesRead++
			n.RecordsRead += len(recs)
			for _, r := range recs {
				if c.short(ctx) {
					return errShort
				}
				err := remove(r)
				switch {
				case errors.Is(err, push.ErrConflict):
					n.Conflicts++
				case err != nil:
					return fmt.Errorf("cleanup shard %d: %w", shard, err)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return nil
}

// short reports whether the run must stop: the context is done, or its
// deadline is nearer than the margin. The deadline is wall-clock time, so
// it is measured with the real clock, not the configured one.
func (c *Cleaner[D, T]) short(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < c.cfg.Margin
}
