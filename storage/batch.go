package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Group commit. The token endpoint's writes (access-token inserts, refresh
// rotations) are small, independent, and arrive from many requests at
// once. Each in its own transaction pays a full commit (on SQLite a WAL
// write, on PostgreSQL a round trip and a WAL flush) for a few hundred
// bytes. The batcher runs whatever jobs are queued when it is free in ONE
// transaction, each job inside its own savepoint, and answers every caller
// only after the commit: a caller never sees success for a write that is
// not durable, and a failing job rolls back alone. Under no load a batch is
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

// run executes one batch: BEGIN; for each job SAVEPOINT, fn, RELEASE (or
// ROLLBACK TO on error); COMMIT; then answers.
func (b *batcher) run(batch []*batchJob) {
	results := make([]error, len(batch))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		for _, j := range batch {
			j.done <- err
		}
		return
	}
	single := len(batch) == 1
	for i, j := range batch {
		if err := j.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if single {
			// No savepoint needed: the transaction is the job's own.
			results[i] = j.fn(j.ctx, tx)
			continue
		}
		sp := fmt.Sprintf("j%d", i)
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
			results[i] = err
			continue
		}
		if results[i] = j.fn(j.ctx, tx); results[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp); err != nil {
				// The transaction is unusable: fail everyone.
				_ = tx.Rollback()
				for _, j := range batch {
					j.done <- err
				}
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
			_ = tx.Rollback()
			for _, j := range batch {
				j.done <- err
			}
			return
		}
	}
	if single && results[0] != nil {
		_ = tx.Rollback()
		batch[0].done <- results[0]
		return
	}
	if err := tx.Commit(); err != nil {
		for _, j := range batch {
			j.done <- err
		}
		return
	}
	for i, j := range batch {
		j.done <- results[i]
	}
}
