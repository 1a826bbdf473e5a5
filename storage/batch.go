package storage

import (
	"context"
	"database/sql"
	"errors"
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
// leaves nothing behind (see abortBatch for the contract). Under no load a batch is
// one job, so latency is what it was; under load the commit cost is shared.

// maxBatch bounds one transaction (and the time a lock is held).
const maxBatch = 128

type batchJob struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

type batcher struct {
	db   *sql.DB
	jobs chan *batchJob
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newBatcher(db *sql.DB) *batcher {
	b := &batcher{db: db, jobs: make(chan *batchJob, maxBatch*4), quit: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

var errStoreClosed = errors.New("storage: store closed")

// do runs fn in a batch transaction and returns its error. fn must use
// only statements prepared before (tx.StmtContext of a cached statement or
// tx.ExecContext): on SQLite the transaction holds the only write
// connection.
func (b *batcher) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := &batchJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.jobs <- j:
	case <-b.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Wait for the answer even if ctx ends meanwhile: the job may be
	// committing, and the caller must learn whether it happened.
	return <-j.done
}

func (b *batcher) close() {
	b.once.Do(func() {
		close(b.quit)
		b.wg.Wait()
	})
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*batchJob, 0, maxBatch)
	for {
		select {
		case j := <-b.jobs:
			batch = append(batch[:0], j)
		case <-b.quit:
			// Answer whoever is still queued.
			for {
				select {
				case j := <-b.jobs:
					j.done <- errStoreClosed
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-b.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		b.run(batch)
	}
}

// abortBatch marks an error that leaves the transaction unusable or
// half-written: the whole batch rolls back and every job gets the error.
// Any other error a job returns must leave nothing behind (jobs are
// written so that expected failures — conflicts — raise no SQL error:
// ON CONFLICT DO NOTHING, compare-and-set updates, compensation), because
// the batch commits around it without savepoints (which cost a round trip
// each on PostgreSQL).
func abortBatch(err error) error { return &batchAbort{err} }

type batchAbort struct{ err error }

func (e *batchAbort) Error() string { return e.err.Error() }
func (e *batchAbort) Unwrap() error { return e.err }

// run executes one batch in one transaction, then answers.
func (b *batcher) run(batch []*batchJob) {
	results := make([]error, len(batch))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) {
		for _, j := range batch {
			j.done <- err
		}
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	for i, j := range batch {
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		results[i] = j.fn(j.ctx, tx)
		var ab *batchAbort
		if errors.As(results[i], &ab) {
			_ = tx.Rollback()
			fail(ab.err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	for i, j := range batch {
		j.done <- results[i]
	}
}
