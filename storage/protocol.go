package storage

// The protocol surface of issue 12: single-use JWT ids, pushed
// authorization requests, the session → client links that back-channel
// logout needs, the back-channel logout queue, and third-party consents.
// Every "first use wins" decision is one conditional statement, so it
// holds across instances sharing one database.

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
)

// ------------------------------------------------------------ used jtis

// usedJTIRow is the table's model (UseOnce writes it with one statement).
type usedJTIRow struct {
	Key       string `gorm:"column:jti_key;primaryKey"`
	ExpiresMs int64  `gorm:"column:expires_at"`
}

func (usedJTIRow) TableName() string { return "used_jtis" }

// UseOnce records key as used until expiresAt. ErrConflict if it is
// already recorded and not yet expired at now: exactly one of any number
// of concurrent calls with the same key succeeds. One statement: an
// INSERT whose conflict branch only revives a row that has expired.
func (s *Store) UseOnce(ctx context.Context, key string, now, expiresAt time.Time) error {
	if key == "" {
		return invalid("use once: empty key")
	}
	res := s.write(ctx).Exec(
		`INSERT INTO used_jtis (jti_key, expires_at) VALUES (?, ?)
		 ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at
		 WHERE used_jtis.expires_at < ?`,
		key, ms(expiresAt), ms(now))
	if res.Error != nil {
		return fail("use once", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrConflict
	}
	return nil
}

// ----------------------------------------------------- pushed requests

type pushedRequestRow struct {
	ID             string `gorm:"column:id;primaryKey"`
	RequestURIHash blob   `gorm:"column:request_uri_hash"`
	ClientID       string `gorm:"column:client_id"`
	Params         string `gorm:"column:params"`
	CreatedMs      int64  `gorm:"column:created_at"`
	ExpiresMs      int64  `gorm:"column:expires_at"`
	UsedMs         int64  `gorm:"column:used_at"`
}

func (pushedRequestRow) TableName() string { return "pushed_requests" }

func (r pushedRequestRow) domain() (PushedRequest, error) {
	var d decoder
	p := PushedRequest{
		ID: r.ID, RequestURIHash: bytesOf(r.RequestURIHash), ClientID: r.ClientID, Params: d.dict(r.Params),
		CreatedAt: tm(r.CreatedMs), ExpiresAt: tm(r.ExpiresMs), UsedAt: tm(r.UsedMs),
	}
	return p, d.err
}

func pushedRequestToRow(p PushedRequest) pushedRequestRow {
	return pushedRequestRow{
		ID: p.ID, RequestURIHash: p.RequestURIHash, ClientID: p.ClientID, Params: encMap(p.Params),
		CreatedMs: ms(p.CreatedAt), ExpiresMs: ms(p.ExpiresAt), UsedMs: ms(p.UsedAt),
	}
}

// CreatePushedRequest stores a pushed authorization request (ID generated
// when empty). ErrConflict on a duplicate RequestURIHash.
func (s *Store) CreatePushedRequest(ctx context.Context, p PushedRequest) (PushedRequest, error) {
	if len(p.RequestURIHash) == 0 {
		return PushedRequest{}, invalid("create pushed request: empty request_uri hash")
	}
	if p.ID == "" {
		p.ID = NewID()
	}
	row := pushedRequestToRow(p)
	if err := s.write(ctx).Create(&row).Error; err != nil {
		return PushedRequest{}, fail("create pushed request", err)
	}
	out, err := row.domain()
	return out, fail("create pushed request", err)
}

// RedeemPushedRequest marks the request used in one conditional UPDATE …
// RETURNING (one winner) and returns it. Valid through now == ExpiresAt.
// ErrNotFound for unknown, expired or already used.
func (s *Store) RedeemPushedRequest(ctx context.Context, requestURIHash []byte, now time.Time) (PushedRequest, error) {
	if len(requestURIHash) == 0 {
		return PushedRequest{}, ErrNotFound
	}
	var rows []pushedRequestRow
	err := s.write(ctx).Raw(
		`UPDATE pushed_requests SET used_at = ?
		 WHERE request_uri_hash = ? AND used_at = 0 AND expires_at >= ?
		 RETURNING *`,
		usedMs(now), requestURIHash, ms(now)).Scan(&rows).Error
	if err != nil {
		return PushedRequest{}, fail("redeem pushed request", err)
	}
	if len(rows) == 0 {
		return PushedRequest{}, ErrNotFound
	}
	out, err := rows[0].domain()
	return out, fail("redeem pushed request", err)
}

// ----------------------------------------------------- session clients

// sessionClientRow is the table's model (written by statements).
type sessionClientRow struct {
	SessionID     string `gorm:"column:session_id;primaryKey"`
	ClientID      string `gorm:"column:client_id;primaryKey"`
	LiveSessionID string `gorm:"column:live_session_id"`
	UserID        string `gorm:"column:user_id"`
	CreatedMs     int64  `gorm:"column:created_at"`
}

func (sessionClientRow) TableName() string { return "session_clients" }

// RecordSessionClient notes that clientID got tokens in browser session
// sessionID of userID (idempotent): the recipients of a back-channel
// logout when that session ends.
func (s *Store) RecordSessionClient(ctx context.Context, sessionID, clientID, userID string, now time.Time) error {
	if sessionID == "" || clientID == "" {
		return invalid("record session client: empty session or client")
	}
	err := s.write(ctx).Exec(
		`INSERT INTO session_clients (session_id, client_id, live_session_id, user_id, created_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT DO NOTHING`, sessionID, clientID, sessionID, userID, ms(now)).Error
	return fail("record session client", err)
}

// ContinueSession hands the client links of browser session from (and of
// the sessions it continued) to session to, which replaced it in the
// same browser (a new sign-in there): they end, and are told, when to
// ends. Nothing to move is not an error.
func (s *Store) ContinueSession(ctx context.Context, from, to string) error {
	if from == "" || to == "" || from == to {
		return nil
	}
	err := s.write(ctx).Exec(`UPDATE session_clients SET live_session_id = ? WHERE live_session_id = ?`, to, from).Error
	return fail("continue session", err)
}

// ------------------------------------------------ back-channel logouts

type backchannelLogoutRow struct {
	ID            string `gorm:"column:id;primaryKey"`
	ClientID      string `gorm:"column:client_id"`
	UserID        string `gorm:"column:user_id"`
	SessionID     string `gorm:"column:session_id"`
	Cause         string `gorm:"column:cause"`
	CreatedMs     int64  `gorm:"column:created_at"`
	NextAttemptMs int64  `gorm:"column:next_attempt_at"`
	Attempts      int    `gorm:"column:attempts"`
	ClaimToken    string `gorm:"column:claim_token"`
	ClaimedMs     int64  `gorm:"column:claimed_until"`
	DeliveredMs   int64  `gorm:"column:delivered_at"`
	FailedMs      int64  `gorm:"column:failed_at"`
	LastError     string `gorm:"column:last_error"`
}

func (backchannelLogoutRow) TableName() string { return "backchannel_logouts" }

func (r backchannelLogoutRow) domain() BackchannelLogout {
	return BackchannelLogout{
		ID: r.ID, ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID, Cause: r.Cause,
		CreatedAt: tm(r.CreatedMs), NextAttemptAt: tm(r.NextAttemptMs), Attempts: r.Attempts,
		ClaimToken: r.ClaimToken, ClaimedUntil: tm(r.ClaimedMs), DeliveredAt: tm(r.DeliveredMs),
		FailedAt: tm(r.FailedMs), LastError: r.LastError,
	}
}

func backchannelLogoutToRow(b BackchannelLogout) backchannelLogoutRow {
	return backchannelLogoutRow{
		ID: b.ID, ClientID: b.ClientID, UserID: b.UserID, SessionID: b.SessionID, Cause: b.Cause,
		CreatedMs: ms(b.CreatedAt), NextAttemptMs: ms(b.NextAttemptAt), Attempts: b.Attempts,
		ClaimToken: b.ClaimToken, ClaimedMs: ms(b.ClaimedUntil), DeliveredMs: ms(b.DeliveredAt),
		FailedMs: ms(b.FailedAt), LastError: b.LastError,
	}
}

// EnqueueBackchannelLogouts queues a logout token for every client with a
// back-channel logout URI that got tokens in one of the ended sessions
// of userID (or in a session one of them continued: ContinueSession),
// with the sid the client knows, and forgets those links, in one
// transaction. It returns what it queued. Sessions nobody got tokens in,
// or whose logouts are already queued, queue nothing: calling it twice
// for one ending queues once.
func (s *Store) EnqueueBackchannelLogouts(ctx context.Context, userID string, sessionIDs []string, cause string, now time.Time) ([]BackchannelLogout, error) {
	ids := slices.DeleteFunc(slices.Clone(sessionIDs), func(id string) bool { return id == "" })
	if userID == "" || len(ids) == 0 {
		return nil, nil
	}
	var out []BackchannelLogout
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// DELETE … RETURNING claims the links: of two concurrent calls for
		// one session, only one gets them.
		var links []struct {
			SessionID string `gorm:"column:session_id"`
			ClientID  string `gorm:"column:client_id"`
		}
		if err := tx.Raw(`DELETE FROM session_clients WHERE user_id = ? AND live_session_id IN (`+placeholders(len(ids))+`)
			RETURNING session_id, client_id`, append([]any{userID}, anys(ids)...)...).Scan(&links).Error; err != nil {
			return err
		}
		if len(links) == 0 {
			return nil
		}
		clients := map[string]bool{}
		for _, l := range links {
			clients[l.ClientID] = false
		}
		var withURI []string
		cids := make([]string, 0, len(clients))
		for id := range clients {
			cids = append(cids, id)
		}
		if err := tx.Raw(`SELECT id FROM clients WHERE backchannel_logout_uri <> '' AND id IN (`+placeholders(len(cids))+`)`,
			anys(cids)...).Scan(&withURI).Error; err != nil {
			return err
		}
		for _, l := range links {
			if !slices.Contains(withURI, l.ClientID) {
				continue
			}
			row := backchannelLogoutToRow(BackchannelLogout{
				ID: NewSortableID(now), ClientID: l.ClientID, UserID: userID, SessionID: l.SessionID, Cause: cause,
				CreatedAt: now, NextAttemptAt: now,
			})
			if err := tx.Create(&row).Error; err != nil {
				return err
			}
			out = append(out, row.domain())
		}
		return nil
	})
	if err != nil {
		return nil, fail("enqueue back-channel logouts", err)
	}
	return out, nil
}

// ClaimBackchannelLogouts claims up to limit deliveries due at now
// (undelivered, not given up, next attempt reached, no live claim) for
// lease, under a new claim token, and returns them. Two workers never
// claim the same row while its lease lasts: on PostgreSQL the candidate
// rows are locked with FOR UPDATE SKIP LOCKED, so concurrent claimers
// take disjoint rows without waiting; on SQLite the single writer
// serialises claims.
func (s *Store) ClaimBackchannelLogouts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]BackchannelLogout, error) {
	lock := ""
	if s.postgres() {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	token := NewID()
	var rows []backchannelLogoutRow
	err := s.write(ctx).Raw(
		`UPDATE backchannel_logouts SET claim_token = ?, claimed_until = ?
		 WHERE id IN (SELECT id FROM backchannel_logouts
			WHERE delivered_at = 0 AND failed_at = 0 AND next_attempt_at <= ? AND claimed_until < ?
			ORDER BY next_attempt_at LIMIT ?`+lock+`)
		 RETURNING *`,
		token, ms(now.Add(lease)), ms(now), ms(now), limit).Scan(&rows).Error
	if err != nil {
		return nil, fail("claim back-channel logouts", err)
	}
	out := make([]BackchannelLogout, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.domain())
	}
	slices.SortFunc(out, func(a, b BackchannelLogout) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	return out, nil
}

// FinishBackchannelLogout records the outcome of a claimed delivery and
// releases the claim. ErrConflict if the claim is no longer this one
// (the lease ran out and another worker took the row): the outcome is
// then not recorded.
func (s *Store) FinishBackchannelLogout(ctx context.Context, id, claimToken string, o BackchannelOutcome, now time.Time) error {
	if id == "" || claimToken == "" {
		return invalid("finish back-channel logout: empty id or claim")
	}
	var res *gorm.DB
	switch {
	case o.Delivered:
		res = s.write(ctx).Exec(`UPDATE backchannel_logouts SET delivered_at = ?, attempts = attempts + 1,
			claim_token = '', claimed_until = 0, last_error = ''
			WHERE id = ? AND claim_token = ?`, usedMs(now), id, claimToken)
	case o.GiveUp:
		res = s.write(ctx).Exec(`UPDATE backchannel_logouts SET failed_at = ?, attempts = attempts + 1,
			claim_token = '', claimed_until = 0, last_error = ?
			WHERE id = ? AND claim_token = ?`, usedMs(now), o.Error, id, claimToken)
	default:
		res = s.write(ctx).Exec(`UPDATE backchannel_logouts SET next_attempt_at = ?, attempts = attempts + 1,
			claim_token = '', claimed_until = 0, last_error = ?
			WHERE id = ? AND claim_token = ?`, ms(o.NextAttemptAt), o.Error, id, claimToken)
	}
	if res.Error != nil {
		return fail("finish back-channel logout", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrConflict
	}
	return nil
}

// ListBackchannelLogouts returns the deliveries queued for a user's
// sessions ("" = every user), oldest first (at most 1000).
func (s *Store) ListBackchannelLogouts(ctx context.Context, userID string) ([]BackchannelLogout, error) {
	q := s.read(ctx).Order("created_at, id").Limit(1000)
	if userID != "" {
		q = q.Where("user_id = ?", userID)
	}
	var rows []backchannelLogoutRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fail("list back-channel logouts", err)
	}
	out := make([]BackchannelLogout, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.domain())
	}
	return out, nil
}

// ------------------------------------------------------------- consents

type consentRow struct {
	UserID    string `gorm:"column:user_id;primaryKey"`
	ClientID  string `gorm:"column:client_id;primaryKey"`
	Scopes    string `gorm:"column:scopes"`
	CreatedMs int64  `gorm:"column:created_at"`
	UpdatedMs int64  `gorm:"column:updated_at"`
}

func (consentRow) TableName() string { return "consents" }

func (r consentRow) domain() (Consent, error) {
	var d decoder
	c := Consent{UserID: r.UserID, ClientID: r.ClientID, Scopes: d.list(r.Scopes), CreatedAt: tm(r.CreatedMs), UpdatedAt: tm(r.UpdatedMs)}
	return c, d.err
}

func consentToRow(c Consent) consentRow {
	return consentRow{UserID: c.UserID, ClientID: c.ClientID, Scopes: encList(c.Scopes), CreatedMs: ms(c.CreatedAt), UpdatedMs: ms(c.UpdatedAt)}
}

// GetConsent returns what userID allowed clientID (ErrNotFound: nothing).
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (Consent, error) {
	row, err := take[consentRow](s.read(ctx), "user_id = ? AND client_id = ?", userID, clientID)
	if err != nil {
		return Consent{}, fail("get consent", err)
	}
	c, err := row.domain()
	return c, fail("get consent", err)
}

// GrantConsent adds scopes to what userID allowed clientID (creating the
// consent), in one transaction, and returns the result: two concurrent
// grants both end up in it.
func (s *Store) GrantConsent(ctx context.Context, userID, clientID string, scopes []string, now time.Time) (Consent, error) {
	if userID == "" || clientID == "" {
		return Consent{}, invalid("grant consent: empty user or client")
	}
	var out Consent
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Create the row first if missing, so that the locking read below
		// always finds one (two first grants then serialise on it).
		if err := tx.Exec(`INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) VALUES (?, ?, '[]', ?, ?)
			ON CONFLICT DO NOTHING`, userID, clientID, ms(now), ms(now)).Error; err != nil {
			return err
		}
		var row consentRow
		if err := s.forUpdate(tx).Where("user_id = ? AND client_id = ?", userID, clientID).Take(&row).Error; err != nil {
			return err
		}
		c, err := row.domain()
		if err != nil {
			return err
		}
		for _, sc := range scopes {
			if sc != "" && !slices.Contains(c.Scopes, sc) {
				c.Scopes = append(c.Scopes, sc)
			}
		}
		slices.Sort(c.Scopes)
		c.UpdatedAt = now
		row.Scopes, row.UpdatedMs = encList(c.Scopes), ms(now)
		if err := tx.Exec(`UPDATE consents SET scopes = ?, updated_at = ? WHERE user_id = ? AND client_id = ?`,
			row.Scopes, row.UpdatedMs, userID, clientID).Error; err != nil {
			return err
		}
		out, err = row.domain()
		return err
	})
	return out, fail("grant consent", err)
}

// ListConsents returns the user's consents ordered by client id.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]Consent, error) {
	var rows []consentRow
	if err := s.read(ctx).Where("user_id = ?", userID).Order("client_id").Find(&rows).Error; err != nil {
		return nil, fail("list consents", err)
	}
	out := make([]Consent, 0, len(rows))
	for _, r := range rows {
		c, err := r.domain()
		if err != nil {
			return nil, fail("list consents", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteConsent withdraws a consent; ErrNotFound if there is none.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	res := s.write(ctx).Where("user_id = ? AND client_id = ?", userID, clientID).Delete(&consentRow{})
	if res.Error != nil {
		return fail("delete consent", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}
