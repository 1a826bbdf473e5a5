package storage

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/sqlitedialect"
)

// batchDB is a SQLite database with one table t(id), for the batcher alone.
func batchDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(sqlitedialect.DriverName, filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec("CREATE TABLE t (id TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return db
}

func batchRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func insertJob(ctx context.Context, id string, after func()) *batchJob {
	return &batchJob{ctx: ctx, done: make(chan error, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
		if after != nil {
			after()
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO t (id) VALUES (?)", id); err != nil {
			return abortBatch(err)
		}
		return nil
	}}
}

// TestBatchIsolation: one job's abort or its caller's cancellation is
// that job's alone. The aborting job leaves nothing; the others of the
// batch are committed and told so.
func TestBatchIsolation(t *testing.T) {
	db := batchDB(t)
	b := &batcher{db: db}
	ctx := context.Background()
	errBoom := errors.New("boom")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := []*batchJob{
		insertJob(ctx, "a", nil),
		{ctx: ctx, done: make(chan error, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO t (id) VALUES ('x')"); err != nil {
				return abortBatch(err)
			}
			return abortBatch(ErrConflict) // half-written: must not stand
		}},
		// Its caller goes away after the job started: it still completes.
		insertJob(cctx, "b", cancel),
		insertJob(ctx, "c", nil),
		{ctx: ctx, done: make(chan error, 1), fn: func(context.Context, *sql.Tx) error { return errBoom }},
	}
	b.run(slices.Clone(jobs)) // run reorders its slice
	want := []error{nil, ErrConflict, nil, nil, errBoom}
	for i, j := range jobs {
		if err := <-j.done; !errors.Is(err, want[i]) || (want[i] == nil && err != nil) {
			t.Errorf("job %d: %v, want %v", i, err, want[i])
		}
	}
	if got := batchRows(t, db); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("rows %v, want [a b c]", got)
	}
	// A job whose caller left before it started does not run.
	gone, cancelGone := context.WithCancel(ctx)
	cancelGone()
	j := insertJob(gone, "d", nil)
	b.run([]*batchJob{j})
	if err := <-j.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("job of a gone caller: %v", err)
	}
	if got := batchRows(t, db); len(got) != 3 {
		t.Fatalf("rows %v, want [a b c]", got)
	}
}

// TestBatchClosed: a write after close is refused, never left waiting for
// a loop that has stopped (after close both the send and quit are ready,
// and select may pick the send).
func TestBatchClosed(t *testing.T) {
	b := newBatcher(batchDB(t), true)
	b.close()
	b.close() // idempotent
	done := make(chan error)
	go func() {
		for range 200 {
			if err := b.do(context.Background(), func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, errStoreClosed) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after close waits forever")
	}
}

// TestBatchLingers: on SQLite, after a batch of several jobs (writes keep
// coming), the next small batch waits the linger and takes what arrived
// meanwhile into its transaction; after a batch of one (no load) a job
// runs at once. The wait is observed, not slept.
func TestBatchLingers(t *testing.T) {
	db := batchDB(t)
	ctx := context.Background()
	var waits []time.Duration
	var late []*batchJob // jobs that "arrive" during the next wait
	b := &batcher{db: db, sqlite: true, jobs: make(chan *batchJob, 16), quit: make(chan struct{}),
		stopped: make(chan struct{}), linger: sqliteLinger}
	b.sleep = func(d time.Duration) {
		waits = append(waits, d)
		for _, j := range late {
			b.jobs <- j
		}
		late = nil
	}
	txOf := map[string]*sql.Tx{}
	job := func(id string) *batchJob {
		return &batchJob{ctx: ctx, done: make(chan error, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
			txOf[id] = tx
			_, err := tx.ExecContext(ctx, "INSERT INTO t (id) VALUES (?)", id)
			return err
		}}
	}
	wait := func(js ...*batchJob) {
		t.Helper()
		for _, j := range js {
			if err := <-j.done; err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two jobs queued before the loop starts: one batch, no wait (nothing
	// came before it).
	a, bb := job("a"), job("b")
	b.jobs <- a
	b.jobs <- bb
	go b.loop()
	defer b.close()
	wait(a, bb)
	if len(waits) != 0 || txOf["a"] != txOf["b"] {
		t.Fatalf("first batch: waits %v, one transaction %v", waits, txOf["a"] == txOf["b"])
	}
	// Under load: c waits, and d, arriving meanwhile, joins its batch.
	c, d := job("c"), job("d")
	late = []*batchJob{d}
	b.jobs <- c
	wait(c, d)
	if len(waits) != 1 || waits[0] != sqliteLinger || txOf["c"] != txOf["d"] {
		t.Fatalf("after a batch of two: waits %v, c and d in one transaction %v", waits, txOf["c"] == txOf["d"])
	}
	// e waits (the last batch had two) and runs alone; f, after a batch
	// of one, does not wait.
	e := job("e")
	b.jobs <- e
	wait(e)
	f := job("f")
	b.jobs <- f
	wait(f)
	if len(waits) != 2 {
		t.Fatalf("waits %v, want two (none after a batch of one)", waits)
	}
	if got := batchRows(t, db); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Fatalf("rows %v", got)
	}
}
