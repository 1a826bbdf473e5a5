//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package factor

import (
	"runtime"
	"syscall"
	"unsafe"
)

// argonRegion is the anonymous mapping an argonMem's blocks lie in. It is
// its own object so that the argonMem's cleanup can hold it without
// holding the argonMem.
type argonRegion struct{ b []byte }

// setBlocks gives a an array of m blocks, mapped outside the Go heap (the
// heap when the mapping fails), letting its old array go first.
func (a *argonMem) setBlocks(m uint32) {
	a.drop()
	size := int(m) * int(unsafe.Sizeof(argonBlock{}))
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		a.blocks = make([]argonBlock, m)
		return
	}
	if a.region == nil {
		a.region = new(argonRegion)
		runtime.AddCleanup(a, unmapRegion, a.region)
	}
	a.region.b = b
	a.blocks = unsafe.Slice((*argonBlock)(unsafe.Pointer(unsafe.SliceData(b))), m)
}

// drop lets a's array go now (a mapping is unmapped).
func (a *argonMem) drop() {
	a.blocks = nil
	if a.region != nil {
		unmapRegion(a.region)
	}
}

func unmapRegion(r *argonRegion) {
	if r.b != nil {
		_ = syscall.Munmap(r.b)
		r.b = nil
	}
}
