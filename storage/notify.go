package storage

// Change notifications between instances. Several instances serve one
// issuer from one PostgreSQL; each caches a little (signing keys, clients,
// organisations' connectors). When one of those tables changes — by any
// instance, the command line, or SQL typed by an operator — a statement
// trigger (migration 0003) announces the table's topic with pg_notify,
// delivered at commit, and every instance listening reloads at once. On
// SQLite (one machine) nothing is announced; instances there rely on the
// periodic reload that also backs up PostgreSQL's notifications.

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Topics announced by the change triggers.
const (
	TopicKeys          = "keys"          // signing_keys
	TopicClients       = "clients"       // clients
	TopicOrganizations = "organizations" // organizations, organization_domains
)

// ErrNoNotifications: the database cannot announce changes (SQLite); the
// caller relies on periodic reloads.
var ErrNoNotifications = errors.New("storage: change notifications need PostgreSQL")

// notifyChannel is the channel of this schema's triggers: one database may
// hold several schemas (tests run one per test), and a listener must hear
// its own only.
const notifyChannelSQL = `SELECT 'latchkey_' || current_schema()`

// Listen calls fn with each topic announced on this database until ctx
// ends, on a dedicated connection. After every (re)connection it first
// calls fn with every topic, because announcements made while it was not
// listening are lost. A lost connection is re-established with back-off;
// Listen returns only when ctx ends (nil) or at once with
// ErrNoNotifications on SQLite. ready, if not nil, is called each time
// the listener is attached (tests wait for it).
func (s *Store) Listen(ctx context.Context, fn func(topic string), ready func()) error {
	if !s.postgres() {
		return ErrNoNotifications
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, ready)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("storage: change notifications interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func(string), ready func()) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return opaque("listen: connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var channel string
	if err := conn.QueryRow(ctx, notifyChannelSQL).Scan(&channel); err != nil {
		return opaque("listen: channel", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return opaque("listen", err)
	}
	for _, t := range []string{TopicKeys, TopicClients, TopicOrganizations} {
		fn(t)
	}
	if ready != nil {
		ready()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// changeTriggers announces changes to the tables instances cache (PostgreSQL
// only). The channel carries the schema so that listeners of another
// schema of the same database hear nothing.
func changeTriggers() []string {
	stmts := []string{
		`CREATE OR REPLACE FUNCTION latchkey_notify_change() RETURNS trigger AS $$
		BEGIN
			PERFORM pg_notify('latchkey_' || current_schema(), TG_ARGV[0]);
			RETURN NULL;
		END;
		$$ LANGUAGE plpgsql`,
	}
	for _, t := range []struct{ table, topic string }{
		{"signing_keys", TopicKeys}, {"clients", TopicClients},
		{"organizations", TopicOrganizations}, {"organization_domains", TopicOrganizations},
	} {
		stmts = append(stmts, `CREATE TRIGGER `+t.table+`_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON `+t.table+
			` FOR EACH STATEMENT EXECUTE FUNCTION latchkey_notify_change('`+t.topic+`')`)
	}
	return stmts
}
