package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL's group commit, pipelined. A job of the token path on
// PostgreSQL is one statement (pgStmt) returning one row: the rotation
// finds, marks, inserts and deletes in a single statement (rotatePG).
// The batcher sends BEGIN and every job's statement of a batch in one
// pipeline (pgx batch: one write, one round trip), reads each job's row,
// then commits: two round trips for the whole batch, instead of one per
// statement of every job. A job that aborts (see abortBatch) rolls the
// batch back and the others run again, as on the generic path.

// pgStmt is a job's PostgreSQL form: one statement written for
// PostgreSQL ($n placeholders) that returns exactly one row, and what the
// job makes of it. read's scan wraps a statement error in abortBatch.
type pgStmt struct {
	sql  string
	args []any
	read func(scan func(dest ...any) error) error
}

// run executes the statement through scan-able row and returns the job's
// result.
func (p *pgStmt) run(row interface{ Scan(dest ...any) error }) error {
	return p.read(func(dest ...any) error {
		if err := row.Scan(dest...); err != nil {
			return abortBatch(err)
		}
		return nil
	})
}

// errNoPipeline: the connection is not a plain pgx one (a Fault wraps
// it); the batch runs on the generic path.
var errNoPipeline = errors.New("storage: no pgx connection to pipeline on")

// tryPipeline runs batch (every job has a pgStmt) as one pipelined
// transaction and answers the jobs, except when a job aborts: it alone is
// answered, and the others are returned to run again. ok is false when
// the pipeline is not available and nothing was sent.
func (b *batcher) tryPipeline(ctx context.Context, batch []*batchJob) (again []*batchJob, ok bool) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		for _, j := range batch {
			j.done <- err
		}
		return nil, true
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, isPgx := dc.(*stdlib.Conn)
		if !isPgx {
			return errNoPipeline
		}
		again = b.pipeline(ctx, sc.Conn(), batch)
		return nil
	})
	if errors.Is(err, errNoPipeline) {
		return nil, false
	}
	if err != nil {
		// The connection could not be used at all: nothing was sent, and
		// no job was answered.
		for _, j := range batch {
			j.done <- err
		}
		return nil, true
	}
	return again, true
}

func (b *batcher) pipeline(ctx context.Context, pc *pgx.Conn, batch []*batchJob) (again []*batchJob) {
	answer := func(err error) {
		for _, j := range batch {
			j.done <- err
		}
	}
	// A failure that leaves the connection's state unknown closes it;
	// database/sql then drops it (stdlib checks IsClosed, and an open
	// transaction, before reusing a connection).
	broken := func(err error) []*batchJob {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = pc.Close(cctx)
		answer(err)
		return nil
	}
	results := make([]error, len(batch))
	var pb pgx.Batch
	pb.Queue("BEGIN")
	queued := make([]int, 0, len(batch))
	for i, j := range batch {
		// A caller that has gone is skipped (as in try).
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		pb.Queue(j.pg.sql, j.pg.args...)
		queued = append(queued, i)
	}
	if len(queued) == 0 {
		for i, j := range batch {
			j.done <- results[i]
		}
		return nil
	}
	br := pc.SendBatch(ctx, &pb)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return broken(err)
	}
	aborted := -1
	var abortErr error
	for _, i := range queued {
		results[i] = batch[i].pg.run(br.QueryRow())
		var ab *batchAbort
		if errors.As(results[i], &ab) {
			aborted, abortErr = i, ab.err
			break
		}
	}
	if err := br.Close(); err != nil && aborted < 0 {
		return broken(err)
	}
	if aborted >= 0 {
		if _, err := pc.Exec(ctx, "ROLLBACK"); err != nil {
			return broken(err)
		}
		batch[aborted].done <- abortErr
		return append(batch[:aborted:aborted], batch[aborted+1:]...)
	}
	if _, err := pc.Exec(ctx, "COMMIT"); err != nil {
		return broken(err)
	}
	for i, j := range batch {
		j.done <- results[i]
	}
	return nil
}

// The rotation on PostgreSQL, as one statement (the same rules as the
// statements of rotate on SQLite): the compare-and-set on the old token
// (unused, or used within the grace; never revoked), the insert of the
// next token of its family, the delete of the old token's access tokens
// and the insert of the new access token — each only if the step before
// it took effect — and what the caller needs to tell the outcomes apart:
// the family (NULL: the compare-and-set matched nothing), the rows
// inserted, and whether the old token exists at all. Every part sees the
// same snapshot, so "exists" is about the old token before the statement.
//
// $1 used_at to set, $2 the old id, $3 the grace's lower bound, $4…$23 the
// next token's columns (refreshTokenColumns; family_id and
// family_created_at are taken from the old token when empty / 0), then
// (with the access token) $24…$33 its columns (accessTokenColumns without
// refresh_token_id and family_id, which come from the inserted token).
var (
	rotatePG           = rotatePGSQL(false)
	rotateWithAccessPG = rotatePGSQL(true)
)

// Column types of the hand-written PostgreSQL statements (a parameter in
// a SELECT list has no type to infer).
var pgIntColumns = map[string]bool{
	"auth_time": true, "second_factor_at": true, "created_at": true, "family_created_at": true,
	"last_used_at": true, "expires_at": true, "used_at": true, "revoked_at": true,
}

func pgParam(col string, n int) string {
	switch {
	case col == "token_hash":
		return "$" + strconv.Itoa(n) + "::bytea"
	case pgIntColumns[col]:
		return "$" + strconv.Itoa(n) + "::bigint"
	}
	return "$" + strconv.Itoa(n) + "::text"
}

func columnList(columns string) []string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return cols
}

func rotatePGSQL(withAccess bool) string {
	var sel []string
	for i, c := range columnList(refreshTokenColumns) {
		p := pgParam(c, 4+i)
		switch c {
		case "family_id":
			p = "old.family_id"
		case "family_created_at":
			p = "CASE WHEN " + p + " = 0 THEN old.family_created_at ELSE " + p + " END"
		}
		sel = append(sel, p)
	}
	famParam := pgParam("family_id", 4+2)
	q := `WITH old AS (
	UPDATE refresh_tokens SET used_at = CASE WHEN used_at = 0 THEN $1::bigint ELSE used_at END
	WHERE id = $2::text AND revoked_at = 0 AND (used_at = 0 OR used_at >= $3::bigint)
	RETURNING family_id, family_created_at
), ins AS (
	INSERT INTO refresh_tokens (` + refreshTokenColumns + `)
	SELECT ` + strings.Join(sel, ", ") + ` FROM old
	WHERE ` + famParam + ` = '' OR ` + famParam + ` = old.family_id
	ON CONFLICT DO NOTHING
	RETURNING id, family_id
), del AS (
	DELETE FROM access_tokens WHERE refresh_token_id = $2::text AND EXISTS (SELECT 1 FROM ins)
), prune AS (
	-- The family's compaction (rotatePrune): used tokens go but the
	-- one just rotated; the heads stay.
	DELETE FROM refresh_tokens WHERE family_id = (SELECT family_id FROM ins) AND id <> $2::text
		AND used_at > 0 AND revoked_at = 0
)`
	inserted := "0"
	if withAccess {
		var asel []string
		n := 24
		for _, c := range columnList(accessTokenColumns) {
			switch c {
			case "refresh_token_id":
				asel = append(asel, "ins.id")
			case "family_id":
				asel = append(asel, "ins.family_id")
			default:
				asel = append(asel, pgParam(c, n))
				n++
			}
		}
		q += `, ains AS (
	INSERT INTO access_tokens (` + accessTokenColumns + `)
	SELECT ` + strings.Join(asel, ", ") + ` FROM ins
	ON CONFLICT DO NOTHING
	RETURNING 1
)`
		inserted = "(SELECT count(*) FROM ains)"
	}
	return q + `
SELECT (SELECT family_id FROM old), (SELECT family_created_at FROM old),
	(SELECT count(*) FROM ins), ` + inserted + `, EXISTS (SELECT 1 FROM refresh_tokens WHERE id = $2::text)`
}

// accessTokenInsertPG is accessTokenInsert on PostgreSQL, returning one
// row: how many were inserted (0: the id exists).
var accessTokenInsertPG = `WITH i AS (` + rebindDollar(accessTokenInsert) + ` RETURNING 1) SELECT count(*) FROM i`
