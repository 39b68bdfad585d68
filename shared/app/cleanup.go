package app

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/offline-push/offline-push/shared/cleanup"
	"github.com/offline-push/offline-push/shared/dynamo"
)

// EnvTokenMaxAgeDays names the number of days a push token may go without a
// refresh before cleanup removes it (default 270).
const EnvTokenMaxAgeDays = "TOKEN_MAX_AGE_DAYS"

var (
	_ cleanup.DNDStore[dynamo.DNDExpiry]    = (*dynamo.CleanupStore)(nil)
	_ cleanup.TokenStore[dynamo.StaleToken] = (*dynamo.CleanupStore)(nil)
)

// Cleanup builds the handler of the scheduled cleanup function. Each
// invocation removes expired DND durations and stale tokens until done or
// until the invocation's deadline comes within cleanup.DefaultMargin, and
// returns and logs what it did. The event's content is not used: every run
// sweeps everything due at its own clock reading.
func Cleanup(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.EventBridgeEvent) (any, error), error) {
	stateTable, err := require(getenv, EnvStateTable)
	if err != nil {
		return nil, err
	}
	maxAge := cleanup.DefaultTokenMaxAge
	if s := getenv(EnvTokenMaxAgeDays); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days < 1 || days > 100*365 {
			return nil, fmt.Errorf("environment variable %s = %q: want a whole number of days from 1", EnvTokenMaxAgeDays, s)
		}
		maxAge = time.Duration(days) * 24 * time.Hour
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("cleanup function: %w", err)
	}
	store := dynamo.NewCleanupStore(dynamodb.NewFromConfig(cfg), stateTable)
	c := cleanup.New[dynamo.DNDExpiry, dynamo.StaleToken](store, store, cleanup.Config{
		Shards:      store.Shards(),
		TokenMaxAge: maxAge,
	})
	return func(ctx context.Context, _ events.EventBridgeEvent) (any, error) {
		n, err := c.Run(ctx)
		log.LogAttrs(ctx, slog.LevelInfo, "cleanup",
			slog.Int("dndExpired", n.DNDExpired),
			slog.Int("conversationsDeleted", n.ConversationsDeleted),
			slog.Int("tokensRemoved", n.TokensRemoved),
			slog.Int("orphanIndexRemoved", n.OrphanIndexRemoved),
			slog.Int("conflicts", n.Conflicts),
			slog.Int("pagesRead", n.PagesRead),
			slog.Int("recordsRead", n.RecordsRead),
			slog.Bool("complete", n.Complete),
		)
		return n, err
	}, nil
}
