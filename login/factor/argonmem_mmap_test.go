//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package factor

import (
	"runtime"
	"testing"
)

// A hasher's argon2id memory (19 MiB at the default parameters) lies
// outside the Go heap, so that it does not raise the garbage collector's
// heap goal, and a dropped array is unmapped at once.
func TestArgonMemoryOutsideHeap(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h := &PasswordHasher{Params: DefaultPasswordParams, Slots: 1}
	before := heap()
	phc, err := h.Hash("off the heap")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := h.Verify(phc, "off the heap"); !ok {
		t.Fatal("Verify failed")
	}
	after := heap()
	if after > before+(2<<20) {
		t.Errorf("the heap grew by %d KiB over a %d KiB hash: the block array is on the heap", (after-before)>>10, DefaultPasswordParams.Memory)
	}
	a := slotMem(t, h)
	if a.region == nil || len(a.region.b) != int(DefaultPasswordParams.Memory)<<10 {
		t.Fatalf("slot memory is not a %d KiB mapping", DefaultPasswordParams.Memory)
	}
	a.drop()
	if a.blocks != nil || a.region.b != nil {
		t.Error("drop kept the mapping")
	}
	// The slot maps a new array when it next runs.
	if ok, _, _ := h.Verify(phc, "off the heap"); !ok {
		t.Fatal("Verify after drop failed")
	}
	runtime.KeepAlive(h)
}
