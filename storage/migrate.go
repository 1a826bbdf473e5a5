package storage

// Versioned migrations. Each migration is frozen DDL text: changing a row
// struct never changes what an old migration does. A new schema change is
// a new numbered migration appended to the list, never an edit of an old
// one. Portable SQL is written once; the only dialect differences are the
// byte-string type and the auto-increment key, substituted by ddl().

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrateLockKey is the pg_advisory_lock key serialising migrations of
// every Latchkey instance sharing a database ("LATCHKEY" in ASCII, as an
// int64, so it is unlikely to collide with another application's key).
const migrateLockKey int64 = 0x4c_41_54_43_48_4b_45_59

// Other PostgreSQL advisory locks use the two-int4 form, whose key space
// is separate from the one-int8 form of migrateLockKey.
const (
	lockClass       = 0x4c4b // "LK": (lockClass, lockX) below
	lockSigningKeys = 1
	lockSweep       = 2
	lockSyncClients = 3
	lockSyncOrgs    = 4
	// (lockClassUserCode, hashtext(hex(user_code_hash))) serialises
	// creations of device authorizations with the same user code.
	lockClassUserCode = 0x4c55 // "LU"
	// (lockClassEmailCode, hashtext(user, purpose, context)) serialises
	// creations of email codes of one scope.
	lockClassEmailCode = 0x4c45 // "LE"
)

// migrationTable names gormigrate's bookkeeping table.
const migrationTable = "schema_migrations"

// Migrate brings the schema up to date. It is safe to call from several
// processes at once: on PostgreSQL a session advisory lock held on one
// pinned connection admits one migrator at a time, on SQLite the whole run
// is one BEGIN IMMEDIATE transaction. Every migration runs in that
// transaction, so a failed migration leaves the schema as it was.
func (s *Store) Migrate(ctx context.Context) error {
	ms := migrations(s.dialect)
	run := func(tx *gorm.DB) error {
		m := gormigrate.New(tx, &gormigrate.Options{
			TableName:    migrationTable,
			IDColumnName: "id",
			IDColumnSize: 255,
			// Our own transaction wraps the run (see below).
			UseTransaction: false,
		}, ms)
		return m.Migrate()
	}
	if !s.postgres() {
		return fail("migrate", s.inTx(ctx, run))
	}
	err := s.w.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", migrateLockKey).Error; err != nil {
			return err
		}
		defer func() {
			// Unlock even when ctx is cancelled; if that fails the
			// connection must not go back to the pool still holding the
			// lock, so mark it bad and let database/sql close it.
			uctx := context.WithoutCancel(ctx)
			if err := conn.WithContext(uctx).Exec("SELECT pg_advisory_unlock(?)", migrateLockKey).Error; err != nil {
				if c, ok := sqlConn(conn); ok {
					_ = c.Raw(func(any) error { return driver.ErrBadConn })
				}
			}
		}()
		return conn.Transaction(run)
	})
	if err != nil {
		return fail("migrate", err)
	}
	s.log.Debug("storage: schema up to date", "dialect", s.dialect, "version", ms[len(ms)-1].ID)
	return nil
}

// migrations lists every migration in order. IDs are never reused.
func migrations(dialect string) []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{ID: "0001_initial", Migrate: execAll(dialect, schema0001()), Rollback: noRollback},
		{ID: "0002_passkeys", Migrate: execAll(dialect, schema0002Passkeys()), Rollback: noRollback},
		{ID: "0003_change_notify", Migrate: postgresOnly(dialect, changeTriggers()), Rollback: noRollback},
		{ID: "0004_operations", Migrate: execAll(dialect, schema0004Operations()), Rollback: noRollback},
		{ID: "0005_protocol", Migrate: execAll(dialect, schema0005Protocol()), Rollback: noRollback},
		{ID: "0006_refresh_compaction", Migrate: execAll(dialect, []string{
			// The sweep's compaction of used refresh tokens (sweep.go):
			// only used tokens are in it, and a head is added once, when it
			// is used.
			`CREATE INDEX refresh_tokens_used ON refresh_tokens (used_at) WHERE used_at <> 0`,
		}), Rollback: noRollback},
		{ID: "0007_limits_outbox", Migrate: execAll(dialect, schema0007LimitsOutbox()), Rollback: noRollback},
		{ID: "0008_languages", Migrate: execAll(dialect, schema0008Languages()), Rollback: noRollback},
		{ID: "0009_id_token_alg", Migrate: execAll(dialect, []string{
			// A client's registered id_token_signed_response_alg (OIDC
			// Dynamic Client Registration §2); '' is none registered: the
			// provider's default (keys.algorithm).
			`ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT ''`,
		}), Rollback: noRollback},
		{ID: "0010_branding", Migrate: execAll(dialect, []string{
			// The logo a client shows on the sign-in pages ("to continue
			// to …", next to its name); '' is none.
			`ALTER TABLE clients ADD COLUMN logo_uri TEXT NOT NULL DEFAULT ''`,
		}), Rollback: noRollback},
		{ID: "0011_refresh_family_used", Migrate: execAll(dialect, []string{
			// Each rotation deletes its family's tokens used before the
			// reuse grace (rotatePrune): by (family_id, used_at) it reaches
			// just those, not every token the grace still keeps (a family
			// refreshed many times a second keeps hundreds). It serves the
			// lookups by family alone as well.
			`CREATE INDEX refresh_tokens_family_used ON refresh_tokens (family_id, used_at)`,
			`DROP INDEX refresh_tokens_family`,
		}), Rollback: noRollback},
		{ID: "0012_refresh_by_family", Migrate: execAll(dialect, schema0012RefreshByFamily(dialect)), Rollback: noRollback},
		{ID: "0013_refresh_families", Migrate: execAll(dialect, schema0013RefreshFamilies()), Rollback: noRollback},
		{ID: "0014_refresh_family_trigger", Migrate: execAll(dialect, schema0014FamilyTrigger(dialect)), Rollback: noRollback},
	}
}

// LatestMigration is the id of the newest migration this build knows.
func LatestMigration() string {
	ms := migrations(DialectSQLite)
	return ms[len(ms)-1].ID
}

// schema0004Operations: the admin API's access level of a client, the security-event
// webhook's delivery queue, and indexes for the admin API's searches.
func schema0004Operations() []string {
	return []string{
		`ALTER TABLE clients ADD COLUMN admin_access TEXT NOT NULL DEFAULT ''`,
		// One row per audit event to deliver; the event itself stays in
		// audit_events. Claimed by a worker (locked_until), retried at
		// next_attempt_at, finished by delivered_at or failed_at.
		`CREATE TABLE event_deliveries (
			id {autoid},
			audit_event_id BIGINT NOT NULL,
			created_at BIGINT NOT NULL DEFAULT 0,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_attempt_at BIGINT NOT NULL DEFAULT 0,
			locked_until BIGINT NOT NULL DEFAULT 0,
			delivered_at BIGINT NOT NULL DEFAULT 0,
			failed_at BIGINT NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX event_deliveries_due ON event_deliveries (next_attempt_at, id) WHERE delivered_at = 0 AND failed_at = 0`,
		`CREATE INDEX event_deliveries_done ON event_deliveries (delivered_at, failed_at)`,
		// Audit search by type and time (the admin API, audit list --type).
		`CREATE INDEX audit_events_event_at ON audit_events (event, at)`,
	}
}

// schema0008Languages: the language and time zone a user chose for pages
// and mails (issue 14). Empty: the browser's language, and UTC.
func schema0008Languages() []string {
	return []string{
		`ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT ''`,
	}
}

// schema0012RefreshByFamily: a refresh token's value names its family.
// On SQLite the token is found among the family's rows, and the unique
// index of random digests, which every rotation changed in two random
// pages (each a WAL frame), goes; tokens issued before values named their
// family (and not rotated since) are found by digest alone, in a partial
// index of just them. The family index carries the digest, so the search
// compares it without reading the rows.
//
// PostgreSQL keeps its unique index of digests and finds every token by
// it: there the family search was slower, not faster (measured: its CPU
// per refresh rose by a third with hot families, the index entries of
// every head a rotation marks used staying behind until vacuum), and at
// 10 M tokens the two could not be told apart.
func schema0012RefreshByFamily(dialect string) []string {
	if dialect == DialectPostgres {
		// Every token stored now is marked hash_only, every later one
		// not: PostgreSQL keeps an added column's constant default in
		// the catalogue, so no row is rewritten.
		return []string{
			`ALTER TABLE refresh_tokens ADD COLUMN hash_only BOOLEAN NOT NULL DEFAULT TRUE`,
			`ALTER TABLE refresh_tokens ALTER COLUMN hash_only SET DEFAULT FALSE`,
		}
	}
	return []string{
		`ALTER TABLE refresh_tokens ADD COLUMN hash_only BOOLEAN NOT NULL DEFAULT FALSE`,
		`UPDATE refresh_tokens SET hash_only = TRUE`,
		`CREATE UNIQUE INDEX refresh_tokens_hash_only ON refresh_tokens (token_hash) WHERE hash_only = TRUE`,
		`DROP INDEX refresh_tokens_token_hash`,
		`CREATE INDEX refresh_tokens_family_token ON refresh_tokens (family_id, used_at, token_hash)`,
		`DROP INDEX refresh_tokens_family_used`,
	}
}

// familyInsert starts an insert of family rows.
const familyInsert = `INSERT INTO refresh_families (id, user_id, session_id, client_id, created_at)`

// familiesFromTokens writes the rows of families from their tokens (t),
// grouped by family: what the tokens share and the family's start
// (migrations 0013 and 0014).
const familiesFromTokens = familyInsert + `
	SELECT family_id, MIN(user_id), MIN(session_id), MIN(client_id), MIN(family_created_at)
	FROM refresh_tokens t`

// schema0013RefreshFamilies: a row per refresh-token family, written when
// the family starts, holds what never changes along it — its user,
// session and client — and the searches by user or session go through
// it. refresh_tokens loses its session and user indexes: every rotation
// wrote an entry into each, at random pages (each a WAL frame on SQLite;
// measured +10–13 % refreshes per core without them). The families of
// tokens already stored are filled in from them.
func schema0013RefreshFamilies() []string {
	return []string{
		`CREATE TABLE refresh_families (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL DEFAULT '',
			session_id TEXT NOT NULL DEFAULT '',
			client_id TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0
		)`,
		familiesFromTokens + ` GROUP BY family_id`,
		`CREATE INDEX refresh_families_user ON refresh_families (user_id)`,
		`CREATE INDEX refresh_families_session ON refresh_families (session_id)`,
		`DROP INDEX refresh_tokens_session`,
		`DROP INDEX refresh_tokens_user`,
	}
}

// schema0014FamilyTrigger: the database writes a family's row when a
// token of a family without one is inserted, whoever inserts it — this
// build, a tool, or an instance of a build from before 0013 during a
// rolling upgrade (which writes no family rows) — so revocation by user
// or session, the device list and a user's deletion find every family.
// A rotation pays one probe of the families' primary key (the row is
// there). Then the families started without a row since 0013 get
// theirs; the trigger comes first, so its lock holds other writers'
// inserts back until the fill commits and none falls between the two.
func schema0014FamilyTrigger(dialect string) []string {
	const insert = familyInsert + `
			VALUES (NEW.family_id, NEW.user_id, NEW.session_id, NEW.client_id, NEW.family_created_at)
			ON CONFLICT DO NOTHING;`
	const fill = familiesFromTokens +
		` WHERE NOT EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = t.family_id) GROUP BY family_id`
	if dialect == DialectPostgres {
		return []string{
			`CREATE OR REPLACE FUNCTION latchkey_refresh_family() RETURNS trigger AS $$
			BEGIN
				` + insert + `
				RETURN NULL;
			END;
			$$ LANGUAGE plpgsql`,
			`CREATE TRIGGER refresh_tokens_family AFTER INSERT ON refresh_tokens
				FOR EACH ROW EXECUTE FUNCTION latchkey_refresh_family()`,
			fill,
		}
	}
	return []string{
		`CREATE TRIGGER refresh_tokens_family AFTER INSERT ON refresh_tokens BEGIN
			` + insert + `
		END`,
		fill,
	}
}

// postgresOnly runs stmts on PostgreSQL and nothing on SQLite.
func postgresOnly(dialect string, stmts []string) gormigrate.MigrateFunc {
	if dialect != DialectPostgres {
		return func(*gorm.DB) error { return nil }
	}
	return execAll(dialect, stmts)
}

var errNoRollback = errors.New("storage: migrations are forward-only")

func noRollback(*gorm.DB) error { return errNoRollback }

func execAll(dialect string, stmts []string) gormigrate.MigrateFunc {
	return func(tx *gorm.DB) error {
		for _, st := range stmts {
			if err := tx.Exec(ddl(dialect, st)).Error; err != nil {
				return err
			}
		}
		return nil
	}
}

// ddl substitutes the two dialect-specific types.
func ddl(dialect, st string) string {
	if dialect == DialectPostgres {
		return strings.NewReplacer(
			"{blob}", "BYTEA",
			"{autoid}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
		).Replace(st)
	}
	return strings.NewReplacer(
		"{blob}", "BLOB",
		"{autoid}", "INTEGER PRIMARY KEY AUTOINCREMENT",
	).Replace(st)
}

// schema0001 is the initial schema. Instants are BIGINT Unix milliseconds
// (0 = unset); lists are JSON text; digests are {blob}, NULL when absent so
// that nullable unique columns (auth_requests.code_hash) allow many unset
// rows. There are no foreign keys: deletes that must cascade are explicit
// in the methods, and the sweeper can delete in any order.
func schema0001() []string {
	return []string{
		`CREATE TABLE users (
			id TEXT PRIMARY KEY,
			email TEXT NOT NULL DEFAULT '',
			email_key TEXT NOT NULL,
			email_verified BOOLEAN NOT NULL DEFAULT FALSE,
			name TEXT NOT NULL DEFAULT '',
			region TEXT NOT NULL DEFAULT '',
			password_hash TEXT NOT NULL DEFAULT '',
			disabled BOOLEAN NOT NULL DEFAULT FALSE,
			org_id TEXT NOT NULL DEFAULT '',
			needs_backup_code BOOLEAN NOT NULL DEFAULT FALSE,
			privacy_product_improvement BOOLEAN NOT NULL DEFAULT FALSE,
			privacy_personalised_offers BOOLEAN NOT NULL DEFAULT FALSE,
			privacy_updated_at BIGINT NOT NULL DEFAULT 0,
			password_changed_at BIGINT NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL DEFAULT 0,
			updated_at BIGINT NOT NULL DEFAULT 0
		)`,
		// email_key is the lower-cased email: uniqueness and lookup are
		// case-insensitive without relying on a collation either dialect lacks.
		`CREATE UNIQUE INDEX users_email_key ON users (email_key)`,
		`CREATE INDEX users_created ON users (created_at, id)`,

		`CREATE TABLE clients (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL DEFAULT '',
			secret_hash {blob},
			public BOOLEAN NOT NULL DEFAULT FALSE,
			redirect_uris TEXT NOT NULL DEFAULT '[]',
			post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
			grant_types TEXT NOT NULL DEFAULT '[]',
			app_type TEXT NOT NULL DEFAULT '',
			access_token_format TEXT NOT NULL DEFAULT '',
			access_token_lifetime_ms BIGINT NOT NULL DEFAULT 0,
			id_token_lifetime_ms BIGINT NOT NULL DEFAULT 0,
			refresh_token_lifetime_ms BIGINT NOT NULL DEFAULT 0,
			default_acr TEXT NOT NULL DEFAULT '',
			source TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			updated_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX clients_source ON clients (source)`,

		`CREATE TABLE auth_requests (
			id TEXT PRIMARY KEY,
			client_id TEXT NOT NULL DEFAULT '',
			redirect_uri TEXT NOT NULL DEFAULT '',
			scopes TEXT NOT NULL DEFAULT '[]',
			state TEXT NOT NULL DEFAULT '',
			nonce TEXT NOT NULL DEFAULT '',
			response_type TEXT NOT NULL DEFAULT '',
			response_mode TEXT NOT NULL DEFAULT '',
			code_challenge TEXT NOT NULL DEFAULT '',
			code_challenge_method TEXT NOT NULL DEFAULT '',
			prompt TEXT NOT NULL DEFAULT '[]',
			max_age BIGINT,
			acr_values TEXT NOT NULL DEFAULT '[]',
			login_hint TEXT NOT NULL DEFAULT '',
			id_token_hint_subject TEXT NOT NULL DEFAULT '',
			ui_locales TEXT NOT NULL DEFAULT '[]',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			browser_hash {blob},
			user_id TEXT NOT NULL DEFAULT '',
			password_at BIGINT NOT NULL DEFAULT 0,
			second_factor_at BIGINT NOT NULL DEFAULT 0,
			second_factor_method TEXT NOT NULL DEFAULT '',
			federated_at BIGINT NOT NULL DEFAULT 0,
			upstream_amr TEXT NOT NULL DEFAULT '[]',
			backup_code_shown BOOLEAN NOT NULL DEFAULT FALSE,
			remember_chosen BOOLEAN NOT NULL DEFAULT FALSE,
			stay_signed_in BOOLEAN NOT NULL DEFAULT FALSE,
			backup_code_sealed {blob},
			upstream_auth_time BIGINT NOT NULL DEFAULT 0,
			done BOOLEAN NOT NULL DEFAULT FALSE,
			amr TEXT NOT NULL DEFAULT '[]',
			acr TEXT NOT NULL DEFAULT '',
			auth_time BIGINT NOT NULL DEFAULT 0,
			session_id TEXT NOT NULL DEFAULT '',
			code_hash {blob},
			code_expires_at BIGINT NOT NULL DEFAULT 0,
			code_used_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX auth_requests_code_hash ON auth_requests (code_hash)`,
		`CREATE INDEX auth_requests_expires ON auth_requests (expires_at)`,

		`CREATE TABLE sessions (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			token_hash {blob} NOT NULL,
			created_at BIGINT NOT NULL DEFAULT 0,
			last_seen_at BIGINT NOT NULL DEFAULT 0,
			auth_time BIGINT NOT NULL DEFAULT 0,
			second_factor_at BIGINT NOT NULL DEFAULT 0,
			amr TEXT NOT NULL DEFAULT '[]',
			federated BOOLEAN NOT NULL DEFAULT FALSE,
			stay_signed_in BOOLEAN NOT NULL DEFAULT FALSE,
			user_agent TEXT NOT NULL DEFAULT '',
			ip TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash)`,
		`CREATE INDEX sessions_user ON sessions (user_id)`,
		`CREATE INDEX sessions_last_seen ON sessions (last_seen_at)`,

		`CREATE TABLE trusted_devices (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			token_hash {blob} NOT NULL,
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			last_second_factor_at BIGINT NOT NULL DEFAULT 0,
			last_used_at BIGINT NOT NULL DEFAULT 0,
			user_agent TEXT NOT NULL DEFAULT '',
			ip TEXT NOT NULL DEFAULT ''
		)`,
		// Not unique: one browser cookie may carry records for several users.
		`CREATE INDEX trusted_devices_user_token ON trusted_devices (user_id, token_hash)`,
		`CREATE INDEX trusted_devices_expires ON trusted_devices (expires_at)`,

		`CREATE TABLE email_codes (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			purpose TEXT NOT NULL,
			context_id TEXT NOT NULL DEFAULT '',
			browser_hash {blob},
			code_hash {blob},
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			attempts INTEGER NOT NULL DEFAULT 0,
			dead_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX email_codes_scope ON email_codes (user_id, purpose, context_id, created_at)`,
		`CREATE INDEX email_codes_user_created ON email_codes (user_id, created_at)`,
		`CREATE INDEX email_codes_expires ON email_codes (expires_at)`,

		`CREATE TABLE totp_credentials (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			seed_sealed {blob},
			status TEXT NOT NULL,
			last_step BIGINT NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL DEFAULT 0,
			confirmed_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX totp_credentials_user ON totp_credentials (user_id)`,

		`CREATE TABLE backup_codes (
			user_id TEXT PRIMARY KEY,
			code_hash {blob},
			created_at BIGINT NOT NULL DEFAULT 0
		)`,

		`CREATE TABLE refresh_tokens (
			id TEXT PRIMARY KEY,
			token_hash {blob} NOT NULL,
			family_id TEXT NOT NULL,
			client_id TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			session_id TEXT NOT NULL DEFAULT '',
			scopes TEXT NOT NULL DEFAULT '[]',
			granted_scopes TEXT NOT NULL DEFAULT '[]',
			audience TEXT NOT NULL DEFAULT '[]',
			amr TEXT NOT NULL DEFAULT '[]',
			acr TEXT NOT NULL DEFAULT '',
			auth_time BIGINT NOT NULL DEFAULT 0,
			second_factor_at BIGINT NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL DEFAULT 0,
			family_created_at BIGINT NOT NULL DEFAULT 0,
			last_used_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			used_at BIGINT NOT NULL DEFAULT 0,
			revoked_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX refresh_tokens_token_hash ON refresh_tokens (token_hash)`,
		`CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)`,
		`CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id)`,
		`CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id)`,
		// The sweeper finds idle and long-revoked families through
		// last_used_at (revocation never precedes the last use) and capped
		// families through expires_at.
		`CREATE INDEX refresh_tokens_last_used ON refresh_tokens (last_used_at)`,
		`CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at)`,

		`CREATE TABLE access_tokens (
			id TEXT PRIMARY KEY,
			client_id TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			refresh_token_id TEXT NOT NULL DEFAULT '',
			family_id TEXT NOT NULL DEFAULT '',
			session_id TEXT NOT NULL DEFAULT '',
			scopes TEXT NOT NULL DEFAULT '[]',
			audience TEXT NOT NULL DEFAULT '[]',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			revoked_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX access_tokens_refresh ON access_tokens (refresh_token_id)`,
		`CREATE INDEX access_tokens_family ON access_tokens (family_id)`,
		`CREATE INDEX access_tokens_expires ON access_tokens (expires_at)`,

		`CREATE TABLE signing_keys (
			id TEXT PRIMARY KEY,
			algorithm TEXT NOT NULL,
			private_sealed {blob},
			public_jwk {blob},
			created_at BIGINT NOT NULL DEFAULT 0,
			not_before BIGINT NOT NULL DEFAULT 0,
			retire_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0
		)`,

		`CREATE TABLE device_authorizations (
			id TEXT PRIMARY KEY,
			device_code_hash {blob} NOT NULL,
			user_code TEXT NOT NULL,
			client_id TEXT NOT NULL DEFAULT '',
			scopes TEXT NOT NULL DEFAULT '[]',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			state TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			amr TEXT NOT NULL DEFAULT '[]',
			acr TEXT NOT NULL DEFAULT '',
			auth_time BIGINT NOT NULL DEFAULT 0,
			session_id TEXT NOT NULL DEFAULT '',
			last_poll_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX device_authorizations_device_code ON device_authorizations (device_code_hash)`,
		// Unique only among live rows, which an index cannot express (liveness
		// depends on the caller's now); CreateDeviceAuthorization enforces it.
		`CREATE INDEX device_authorizations_user_code ON device_authorizations (user_code, expires_at)`,
		`CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at)`,

		`CREATE TABLE audit_events (
			id {autoid},
			at BIGINT NOT NULL DEFAULT 0,
			user_id TEXT NOT NULL DEFAULT '',
			email TEXT NOT NULL DEFAULT '',
			event TEXT NOT NULL DEFAULT '',
			client_id TEXT NOT NULL DEFAULT '',
			ip TEXT NOT NULL DEFAULT '',
			user_agent TEXT NOT NULL DEFAULT '',
			reason TEXT NOT NULL DEFAULT '',
			details TEXT NOT NULL DEFAULT '{}'
		)`,
		`CREATE INDEX audit_events_user_at ON audit_events (user_id, at)`,
		`CREATE INDEX audit_events_at ON audit_events (at)`,

		`CREATE TABLE throttles (
			throttle_key TEXT PRIMARY KEY,
			failures INTEGER NOT NULL DEFAULT 0,
			last_failure_at BIGINT NOT NULL DEFAULT 0,
			blocked_until BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX throttles_last_failure ON throttles (last_failure_at)`,

		`CREATE TABLE action_tokens (
			id TEXT PRIMARY KEY,
			token_hash {blob} NOT NULL,
			user_id TEXT NOT NULL DEFAULT '',
			purpose TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			used_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX action_tokens_token_hash ON action_tokens (token_hash)`,
		`CREATE INDEX action_tokens_expires ON action_tokens (expires_at)`,

		`CREATE TABLE logout_requests (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL DEFAULT '',
			client_id TEXT NOT NULL DEFAULT '',
			redirect_uri TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX logout_requests_expires ON logout_requests (expires_at)`,

		`CREATE TABLE organizations (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			issuer TEXT NOT NULL DEFAULT '',
			client_id TEXT NOT NULL DEFAULT '',
			client_secret_sealed {blob},
			scopes TEXT NOT NULL DEFAULT '[]',
			claim_email TEXT NOT NULL DEFAULT '',
			claim_name TEXT NOT NULL DEFAULT '',
			claim_groups TEXT NOT NULL DEFAULT '',
			trust_upstream_mfa BOOLEAN NOT NULL DEFAULT FALSE,
			jit_provisioning BOOLEAN NOT NULL DEFAULT FALSE,
			source TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			updated_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX organizations_name ON organizations (name)`,
		// A domain belongs to at most one organisation: the primary key says
		// so. Domains are stored lower-cased.
		`CREATE TABLE organization_domains (
			domain TEXT PRIMARY KEY,
			org_id TEXT NOT NULL
		)`,
		`CREATE INDEX organization_domains_org ON organization_domains (org_id)`,

		`CREATE TABLE federated_identities (
			org_id TEXT NOT NULL,
			subject TEXT NOT NULL,
			user_id TEXT NOT NULL,
			created_at BIGINT NOT NULL DEFAULT 0,
			last_login_at BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (org_id, subject)
		)`,
		`CREATE INDEX federated_identities_user ON federated_identities (user_id)`,

		`CREATE TABLE upstream_states (
			id TEXT PRIMARY KEY,
			state_hash {blob} NOT NULL,
			auth_request_id TEXT NOT NULL DEFAULT '',
			browser_hash {blob},
			org_id TEXT NOT NULL DEFAULT '',
			nonce TEXT NOT NULL DEFAULT '',
			verifier_sealed {blob},
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			used_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX upstream_states_state_hash ON upstream_states (state_hash)`,
		`CREATE INDEX upstream_states_expires ON upstream_states (expires_at)`,
	}
}

// schema0002Passkeys adds WebAuthn credentials (passkeys), their
// ceremonies in flight, and what a sign-in learnt from a passkey.
func schema0002Passkeys() []string {
	return []string{
		`CREATE TABLE passkeys (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL,
			credential_id {blob} NOT NULL,
			user_handle {blob} NOT NULL,
			public_key {blob} NOT NULL,
			attestation_type TEXT NOT NULL DEFAULT '',
			attestation_format TEXT NOT NULL DEFAULT '',
			transports TEXT NOT NULL DEFAULT '[]',
			aaguid {blob},
			attachment TEXT NOT NULL DEFAULT '',
			sign_count BIGINT NOT NULL DEFAULT 0,
			user_verified BOOLEAN NOT NULL DEFAULT FALSE,
			backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
			backup_state BOOLEAN NOT NULL DEFAULT FALSE,
			name TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			last_used_at BIGINT NOT NULL DEFAULT 0
		)`,
		// A credential id names one credential, whoever holds it.
		`CREATE UNIQUE INDEX passkeys_credential_id ON passkeys (credential_id)`,
		`CREATE INDEX passkeys_user ON passkeys (user_id, created_at)`,

		`CREATE TABLE passkey_challenges (
			id TEXT PRIMARY KEY,
			challenge_hash {blob} NOT NULL,
			purpose TEXT NOT NULL,
			context_id TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			browser_hash {blob},
			session {blob},
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			used_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX passkey_challenges_hash ON passkey_challenges (challenge_hash)`,
		`CREATE INDEX passkey_challenges_scope ON passkey_challenges (purpose, context_id)`,
		`CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at)`,

		`ALTER TABLE auth_requests ADD COLUMN passkey_at BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE auth_requests ADD COLUMN passkey_user_verified BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE auth_requests ADD COLUMN passkey_backup_eligible BOOLEAN NOT NULL DEFAULT FALSE`,
	}
}

// schema0005Protocol is the protocol surface of issue 12: client keys and
// capabilities, DPoP bindings, single-use JWT ids, pushed authorization
// requests, the clients each browser session gave tokens to, the
// back-channel logout queue, and third-party consents.
func schema0005Protocol() []string {
	return []string{
		// Clients: private_key_jwt keys (inline JWKS document or its URL),
		// the scopes client_credentials may grant, back-channel logout,
		// third-party consent, PAR and DPoP requirements.
		`ALTER TABLE clients ADD COLUMN jwks TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE clients ADD COLUMN jwks_uri TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE clients ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]'`,
		`ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE clients ADD COLUMN third_party BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE clients ADD COLUMN dpop_bound BOOLEAN NOT NULL DEFAULT FALSE`,

		// When the user answered a consent page in this sign-in.
		`ALTER TABLE auth_requests ADD COLUMN consent_at BIGINT NOT NULL DEFAULT 0`,

		// DPoP (RFC 9449): the JWK thumbprint a token is bound to ('' = none).
		`ALTER TABLE access_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT ''`,

		// A JWT id seen once (client assertions, DPoP proofs): the primary
		// key makes "first use" one INSERT that exactly one caller wins.
		`CREATE TABLE used_jtis (
			jti_key TEXT PRIMARY KEY,
			expires_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX used_jtis_expires ON used_jtis (expires_at)`,

		// Pushed authorization requests (RFC 9126); the request_uri is
		// stored as its HMAC.
		`CREATE TABLE pushed_requests (
			id TEXT PRIMARY KEY,
			request_uri_hash {blob} NOT NULL,
			client_id TEXT NOT NULL DEFAULT '',
			params TEXT NOT NULL DEFAULT '{}',
			created_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			used_at BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE UNIQUE INDEX pushed_requests_hash ON pushed_requests (request_uri_hash)`,
		`CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at)`,

		// Which clients got tokens in which browser session (session_id,
		// the sid they know): the recipients of back-channel logouts when
		// the session ends. live_session_id is the session that carries it
		// now: a new sign-in in the same browser replaces the session row
		// but not what the products hold. Rows outlive the session row
		// until the logout is queued.
		`CREATE TABLE session_clients (
			session_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			live_session_id TEXT NOT NULL,
			user_id TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (session_id, client_id)
		)`,
		`CREATE INDEX session_clients_live ON session_clients (live_session_id)`,
		`CREATE INDEX session_clients_user ON session_clients (user_id)`,
		`CREATE INDEX session_clients_created ON session_clients (created_at)`,

		// The back-channel logout queue (OIDC Back-Channel Logout 1.0):
		// claimed by one worker at a time (claim_token, claimed_until),
		// retried with back-off, kept until swept.
		`CREATE TABLE backchannel_logouts (
			id TEXT PRIMARY KEY,
			client_id TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			session_id TEXT NOT NULL DEFAULT '',
			cause TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL DEFAULT 0,
			next_attempt_at BIGINT NOT NULL DEFAULT 0,
			attempts INTEGER NOT NULL DEFAULT 0,
			claim_token TEXT NOT NULL DEFAULT '',
			claimed_until BIGINT NOT NULL DEFAULT 0,
			delivered_at BIGINT NOT NULL DEFAULT 0,
			failed_at BIGINT NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX backchannel_logouts_due ON backchannel_logouts (delivered_at, failed_at, next_attempt_at)`,
		`CREATE INDEX backchannel_logouts_created ON backchannel_logouts (created_at)`,

		// Third-party consent: the scopes a user granted a client.
		`CREATE TABLE consents (
			user_id TEXT NOT NULL,
			client_id TEXT NOT NULL,
			scopes TEXT NOT NULL DEFAULT '[]',
			created_at BIGINT NOT NULL DEFAULT 0,
			updated_at BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (user_id, client_id)
		)`,
	}
}

// schema0007LimitsOutbox: browsers known per user (the throttle's exemption), device
// user codes stored as an HMAC with a per-authorization guess count,
// email codes' budget and delivery state, and the mail outbox.
func schema0007LimitsOutbox() []string {
	return []string{
		`CREATE TABLE known_browsers (
			user_id TEXT NOT NULL,
			token_hash {blob} NOT NULL,
			first_seen_at BIGINT NOT NULL DEFAULT 0,
			last_seen_at BIGINT NOT NULL DEFAULT 0,
			expires_at BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (user_id, token_hash)
		)`,
		`CREATE INDEX known_browsers_expires ON known_browsers (expires_at)`,

		// User codes only as HMACs. Rows of the old shape are at most
		// ten minutes old; their plain codes go, so a pending one can no
		// longer be entered and simply expires.
		`DROP INDEX device_authorizations_user_code`,
		`ALTER TABLE device_authorizations DROP COLUMN user_code`,
		`ALTER TABLE device_authorizations ADD COLUMN user_code_hash {blob}`,
		`ALTER TABLE device_authorizations ADD COLUMN user_code_half {blob}`,
		`ALTER TABLE device_authorizations ADD COLUMN wrong_guesses INTEGER NOT NULL DEFAULT 0`,
		`CREATE INDEX device_authorizations_user_code ON device_authorizations (user_code_hash, expires_at)`,
		`CREATE INDEX device_authorizations_user_code_half ON device_authorizations (user_code_half, expires_at)`,

		// Email codes: which send budget they spend, how their mail is
		// doing (a code whose mail failed is given back).
		`ALTER TABLE email_codes ADD COLUMN budget TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE email_codes ADD COLUMN mail_state TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX email_codes_budget ON email_codes (user_id, budget, created_at)`,

		// The durable mail outbox. sealed holds the message (AES-GCM) until
		// it is sent, has failed or is superseded, then NULL.
		`CREATE TABLE mail_outbox (
			id TEXT PRIMARY KEY,
			kind TEXT NOT NULL DEFAULT '',
			purpose TEXT NOT NULL DEFAULT '',
			recipient TEXT NOT NULL DEFAULT '',
			user_id TEXT NOT NULL DEFAULT '',
			email_code_id TEXT NOT NULL DEFAULT '',
			sealed {blob},
			state TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL DEFAULT 0,
			next_at BIGINT NOT NULL DEFAULT 0,
			lease_until BIGINT NOT NULL DEFAULT 0,
			give_up_at BIGINT NOT NULL DEFAULT 0,
			done_at BIGINT NOT NULL DEFAULT 0,
			claim TEXT NOT NULL DEFAULT '',
			last_error TEXT NOT NULL DEFAULT ''
		)`,
		// Claims look for due pending rows and expired leases.
		`CREATE INDEX mail_outbox_due ON mail_outbox (state, next_at)`,
		`CREATE INDEX mail_outbox_lease ON mail_outbox (state, lease_until)`,
		`CREATE INDEX mail_outbox_code ON mail_outbox (email_code_id)`,
		`CREATE INDEX mail_outbox_done ON mail_outbox (done_at)`,
	}
}
