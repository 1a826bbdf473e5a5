package storage_test

// Micro-benchmarks of the OP's hot paths, on every dialect storagetest
// offers. "serial" is one caller's latency; "parallel" is throughput with
// GOMAXPROCS callers (SQLite writes are serialised on one connection, so
// this shows the write ceiling; reads run on the reader pool).
//
//	go test ./storage -run '^$' -bench . -benchtime 2s

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func BenchmarkRotateRefreshToken(b *testing.B) {
	for _, d := range storagetest.Dialects(b) {
		b.Run(d.Name+"/serial", func(b *testing.B) {
			s := d.Open(b)
			head := newFamily(b, s, "bench", "u1", "s1", "app")
			i := 0
			for b.Loop() {
				i++
				head = benchRotate(b, s, head, i)
			}
		})
		b.Run(d.Name+"/parallel", func(b *testing.B) {
			s := d.Open(b)
			var worker atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				w := worker.Add(1)
				head := newFamily(b, s, fmt.Sprint("bench", w), "u1", "s1", "app")
				i := 0
				for pb.Next() {
					i++
					head = benchRotate(b, s, head, int(w)*1_000_000_000+i)
				}
			})
		})
	}
}

func benchRotate(b *testing.B, s *storage.Store, head storage.RefreshToken, i int) storage.RefreshToken {
	now := at(time.Duration(i) * time.Millisecond)
	next := storage.RefreshToken{
		TokenHash: digest(fmt.Sprint("rt", i)), ClientID: head.ClientID, UserID: head.UserID,
		SessionID: head.SessionID, Scopes: head.Scopes, GrantedScopes: head.GrantedScopes,
		Audience: head.Audience, AMR: head.AMR, ACR: head.ACR, AuthTime: head.AuthTime,
		SecondFactorAt: head.SecondFactorAt, ExpiresAt: head.ExpiresAt,
	}
	rt, err := s.RotateRefreshToken(b.Context(), head.ID, now, next)
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

func BenchmarkGetSessionByTokenHash(b *testing.B) {
	const n = 1000
	for _, d := range storagetest.Dialects(b) {
		s := d.Open(b)
		hashes := make([][]byte, n)
		for i := range hashes {
			hashes[i] = digest(fmt.Sprint("cookie", i))
			must(s.CreateSession(b.Context(), storage.Session{
				UserID: fmt.Sprint("u", i), TokenHash: hashes[i], CreatedAt: at(0), AMR: []string{"pwd", "otp"},
			}))(b)
		}
		b.Run(d.Name+"/serial", func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := s.GetSessionByTokenHash(b.Context(), hashes[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.Name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.GetSessionByTokenHash(b.Context(), hashes[rand.IntN(n)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkCreateAccessToken(b *testing.B) {
	for _, d := range storagetest.Dialects(b) {
		s := d.Open(b)
		token := func(id string) storage.AccessToken {
			return storage.AccessToken{
				ID: id, ClientID: "app", UserID: "u1", RefreshTokenID: "rt", FamilyID: "fam", SessionID: "s1",
				Scopes: []string{"openid", "email"}, Audience: []string{"app"}, CreatedAt: at(0), ExpiresAt: at(time.Hour),
			}
		}
		b.Run(d.Name+"/serial", func(b *testing.B) {
			for b.Loop() {
				if err := s.CreateAccessToken(b.Context(), token(storage.NewID())); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(d.Name+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.CreateAccessToken(b.Context(), token(storage.NewID())); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
