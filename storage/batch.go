package storage

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"time"
)

// Group commit. The token endpoint's writes (access-token inserts, refresh
// rotations) are small, independent, and arrive from many requests at
// once. Each in its own transaction pays a full commit (on SQLite a WAL
// write, on PostgreSQL a round trip and a WAL flush) for a few hundred
// bytes. The batcher runs whatever jobs are queued when it is free in ONE
// transaction and answers every caller only after the commit: a caller
// never sees success for a write that is not durable, and a job that fails
// leaves nothing behind and does not fail the others (see abortBatch for
// the contract). Under no load a batch is one job, so latency is what it
// was; under load the commit cost is shared.

// maxBatch bounds one transaction (and the time a lock is held).
const maxBatch = 128

// On SQLite, while the writes keep coming (the last batch held more than
// one job), the batcher lets a batch that is still small gather for
// sqliteLinger before it runs it. Each commit writes the pages its jobs
// share (the tables' and time-ordered indexes' last pages) once, so a
// batch of 14 jobs costs much less per job than one of 5, which is what
// running at once gathered at 50 concurrent refreshes on one core.
// Measured (refresh, SQLite, one core): +2 to +25 % per core in six
// interleaved rounds, p99 30–34 ms against 34–45. Not on PostgreSQL: its
// batches were already ~22 jobs (pipelined), and waiting there raised p99
// and its CPU per job.
const (
	sqliteLinger = time.Millisecond
	lingerBelow  = maxBatch / 4
)

type batchJob struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sql.Tx) error
	// pg, when set, is the job as one PostgreSQL statement (pipeline.go);
	// fn may then be nil.
	pg   *pgStmt
	done chan error
}

type batcher struct {
	db *sql.DB
	// sqlite: the statements of a batch run on a context that cannot be
	// cancelled. modernc's driver starts a goroutine per statement to
	// watch a cancellable one; SQLite statements of the token path take
	// microseconds and the busy timeout bounds a wait for the lock.
	sqlite bool
	jobs   chan *batchJob
	quit   chan struct{}
	// stopped is closed when loop has returned: a job still queued then
	// will never run.
	stopped chan struct{}
	once    sync.Once
	// linger (see sqliteLinger; 0: none) and how it waits (time.Sleep).
	linger time.Duration
	sleep  func(time.Duration)
}

func newBatcher(db *sql.DB, sqlite bool) *batcher {
	b := &batcher{db: db, sqlite: sqlite, jobs: make(chan *batchJob, maxBatch*4),
		quit: make(chan struct{}), stopped: make(chan struct{}), sleep: time.Sleep}
	if sqlite {
		b.linger = sqliteLinger
	}
	go b.loop()
	return b
}

var errStoreClosed = errors.New("storage: store closed")

// do runs fn in a batch transaction and returns its error. fn must use
// statements got from a stmtCache before do (through tx.StmtContext):
// getting one inside would wait for a free connection, and on SQLite the
// transaction holds the only writer; and only the cache rebinds ?
// placeholders for PostgreSQL.
func (b *batcher) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return b.send(&batchJob{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doPG runs a job given as one PostgreSQL statement (pipeline.go); only
// for a batcher on PostgreSQL.
func (b *batcher) doPG(ctx context.Context, p *pgStmt) error {
	return b.send(&batchJob{ctx: ctx, pg: p, done: make(chan error, 1)})
}

func (b *batcher) send(j *batchJob) error {
	ctx := j.ctx
	select {
	case b.jobs <- j:
	case <-b.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Wait for the answer even if ctx ends meanwhile: the job may be
	// committing, and the caller must learn whether it happened. Once quit
	// is closed both cases above may be ready and the send can win, after
	// loop has returned; stopped then says the job will never run. loop
	// answers every job it ran before it returns, so an answer is already
	// in done when stopped is closed.
	select {
	case err := <-j.done:
		return err
	case <-b.stopped:
		select {
		case err := <-j.done:
			return err
		default:
			return errStoreClosed
		}
	}
}

func (b *batcher) close() {
	b.once.Do(func() {
		close(b.quit)
		<-b.stopped
	})
}

func (b *batcher) loop() {
	defer close(b.stopped)
	batch := make([]*batchJob, 0, maxBatch)
	last := 0 // jobs in the previous batch
	for {
		select {
		case j := <-b.jobs:
			batch = append(batch[:0], j)
		case <-b.quit:
			return // jobs still queued learn it from stopped
		}
		batch = b.fill(batch)
		if b.linger > 0 && last > 1 && len(batch) < lingerBelow {
			b.sleep(b.linger)
			batch = b.fill(batch)
		}
		last = len(batch)
		b.run(batch)
	}
}

// fill adds the jobs queued now to batch, up to maxBatch.
func (b *batcher) fill(batch []*batchJob) []*batchJob {
	for len(batch) < maxBatch {
		select {
		case j := <-b.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// abortBatch marks an error that leaves the transaction unusable or
// half-written: the transaction rolls back, the job that aborted gets the
// error, and the other jobs run again without it in a new transaction (an
// error of one caller is never another's: a stray ErrConflict would read
// as refresh-token reuse). Any other error a job returns must leave
// nothing behind (jobs are written so that expected failures — conflicts
// — raise no SQL error: ON CONFLICT DO NOTHING, compare-and-set updates,
// compensation), because the batch commits around it without savepoints
// (which cost a round trip each on PostgreSQL). A job may therefore run
// more than once; only its last run's effects are committed.
func abortBatch(err error) error { return &batchAbort{err} }

type batchAbort struct{ err error }

func (e *batchAbort) Error() string { return e.err.Error() }
func (e *batchAbort) Unwrap() error { return e.err }

// pipelined: every job of batch has its PostgreSQL statement.
func pipelined(batch []*batchJob) bool {
	for _, j := range batch {
		if j.pg == nil {
			return false
		}
	}
	return true
}

// stmtCtx is the context the statements of a batch run on (see sqlite).
func (b *batcher) stmtCtx(ctx context.Context) context.Context {
	if b.sqlite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// run executes one batch in one transaction (one more for each job that
// aborts), then answers.
func (b *batcher) run(batch []*batchJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(batch) > 0 {
		if !b.sqlite && pipelined(batch) {
			if again, ok := b.tryPipeline(ctx, batch); ok {
				batch = again
				continue
			}
		}
		batch = b.try(ctx, batch)
	}
}

// try runs batch in one transaction and answers every job, except when a
// job aborts: it alone is answered, and try returns the others to run again.
func (b *batcher) try(ctx context.Context, batch []*batchJob) (again []*batchJob) {
	answer := func(err error) {
		for _, j := range batch {
			j.done <- err
		}
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		answer(err)
		return nil
	}
	results := make([]error, len(batch))
	for i, j := range batch {
		// A caller that has gone is skipped; once started, a job runs on
		// the batch's context, not its caller's: a caller cancelled
		// mid-statement would otherwise fail the statement, and so abort
		// the transaction under every other job. The caller waits for the
		// answer anyway (see do).
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if j.fn != nil {
			results[i] = j.fn(b.stmtCtx(ctx), tx)
		} else {
			results[i] = j.pg.run(tx.QueryRowContext(ctx, j.pg.sql, j.pg.args...))
		}
		var ab *batchAbort
		if errors.As(results[i], &ab) {
			_ = tx.Rollback()
			j.done <- ab.err
			return slices.Delete(batch, i, i+1)
		}
	}
	if err := tx.Commit(); err != nil {
		answer(err)
		return nil
	}
	for i, j := range batch {
		j.done <- results[i]
	}
	return nil
}
