//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package factor

// argonRegion is unused where blocks live on the heap (argonmem_mmap.go
// maps them elsewhere).
type argonRegion struct{}

// setBlocks gives a an array of m blocks on the heap.
func (a *argonMem) setBlocks(m uint32) {
	a.blocks = nil // let the old array go before taking the new one
	a.blocks = make([]argonBlock, m)
}

// drop lets a's array go.
func (a *argonMem) drop() { a.blocks = nil }
