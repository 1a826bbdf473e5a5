package factor

import (
	"encoding/binary"
	"math/bits"
	"runtime"

	"golang.org/x/crypto/blake2b"
)

// Argon2id (RFC 9106, version 0x13) over memory that the caller keeps
// between runs.
//
// golang.org/x/crypto/argon2.IDKey allocates (and the runtime zeroes) a
// fresh block array on every call: 19 MiB at the default parameters, which
// under a stream of sign-ins is most of the process's memory and a tenth of
// the hashing time. x/crypto exports nothing that accepts caller memory, so
// this file implements the function itself; argonMem is the reusable part.
// H and H' use golang.org/x/crypto/blake2b. The tests hold it to RFC 9106
// §5.3 and to x/crypto/argon2.IDKey over random inputs and parameters.
//
// Why the memory needs no zeroing between runs: every block is written
// before it is read.
//
//   - Pass 0, slice 0 writes blocks 0 and 1 of each lane from H' and then
//     computes blocks 2, 3, … in order. Block j of pass 0 reads block j−1
//     (written just before) and a reference block from the set W of RFC 9106
//     §3.4.2, which in pass 0 holds only blocks already computed in this
//     pass: in the same lane those before j−1, in another lane only those
//     of slices that are finished (another lane is never referenced in
//     slice 0). refIndex's size computation is that rule; the "prev wraps
//     to the end of the lane" case arises only in later passes.
//   - Pass 0 overwrites each block (compress with xor=false) instead of
//     XORing into it as version 0x13 does in later passes, so its own old
//     contents are never read. (x/crypto XORs in pass 0 too, which is
//     correct only because its memory is fresh zeroes.)
//   - Lanes are run one after the other within each slice, so "finished"
//     above holds without goroutines; the data dependencies are those of
//     the parallel algorithm (the result is the same, see the tests).
//   - By the end of pass 0 every block of the m' blocks used has been
//     written; later passes XOR into them, and the tag reads the last block
//     of each lane after the last pass.
//
// Blocks beyond m' (left over from a larger earlier run) are never touched.
// The tests run with memory filled with garbage to show that none of it
// leaks into a result.

const (
	argonVersion    = 0x13 // RFC 9106 v
	argonTypeID     = 2    // RFC 9106 y: Argon2id
	argonSyncPoints = 4    // SL: slices per pass
	argonBlockWords = 128  // a 1024-byte block as little-endian 64-bit words
)

type argonBlock [argonBlockWords]uint64

// argonMem is the memory of argon2id runs, reused from one run to the next.
// One run at a time.
//
// Where the platform allows, the block array is mapped outside the Go heap
// (argonmem_mmap.go): 19 MiB of live heap would double the garbage
// collector's heap goal under GOGC and crowd the soft memory limit, though
// the array holds no pointers and is reused for good. setBlocks takes an
// array, drop lets it go at once; an argonMem that is dropped by its owner
// without drop gives its mapping back when the garbage collector frees it.
type argonMem struct {
	blocks []argonBlock
	h0in   []byte       // the input of H0; holds the password, cleared after each run
	region *argonRegion // the mapping blocks lies in (nil: blocks is on the heap)
}

// argonBlocks is m', the number of blocks a run uses: memory KiB rounded down
// to a multiple of 4·lanes, and at least 8·lanes (RFC 9106 §3.2; x/crypto
// rounds up small values the same way, with H0 still taking the given m).
func argonBlocks(memory uint32, lanes uint8) uint32 {
	q := argonSyncPoints * uint32(lanes)
	m := memory / q * q
	if m < 2*q {
		m = 2 * q
	}
	return m
}

// idKey fills out with the argon2id tag of password (len(out) is the tag
// length T), with secret K and associated data X, over memory KiB, time
// passes and lanes lanes. It uses a.blocks, growing it when it is too small.
// The password is a string so that no []byte copy of it is made: its one
// copy goes into a.h0in, which is cleared.
func (a *argonMem) idKey(out []byte, password string, salt, secret, data []byte, time, memory uint32, lanes uint8) {
	h0 := a.h0(password, salt, secret, data, time, memory, uint32(lanes), uint32(len(out)))
	m := argonBlocks(memory, lanes)
	if uint32(cap(a.blocks)) < m {
		a.setBlocks(m)
	}
	B := a.blocks[:m]
	argonFirstBlocks(B, &h0, uint32(lanes))
	clear(h0[:])
	for n := range time {
		argonPass(B, n, time, uint32(lanes))
	}
	argonTag(out, B, uint32(lanes))
	// B may lie outside the Go heap, unmapped by a's cleanup (argonmem_mmap.go):
	// a stays reachable until B is no longer used.
	runtime.KeepAlive(a)
}

// h0 is H0 of RFC 9106 §3.2 step 1.
func (a *argonMem) h0(password string, salt, secret, data []byte, time, memory, lanes, keyLen uint32) [blake2b.Size]byte {
	// Sized up front: growing by append would leave a copy of the password
	// behind in the old array.
	n := 6*4 + 4 + len(password) + 4 + len(salt) + 4 + len(secret) + 4 + len(data)
	if cap(a.h0in) < n {
		a.h0in = make([]byte, 0, n)
	}
	b := a.h0in[:0]
	b = binary.LittleEndian.AppendUint32(b, lanes)
	b = binary.LittleEndian.AppendUint32(b, keyLen)
	b = binary.LittleEndian.AppendUint32(b, memory)
	b = binary.LittleEndian.AppendUint32(b, time)
	b = binary.LittleEndian.AppendUint32(b, argonVersion)
	b = binary.LittleEndian.AppendUint32(b, argonTypeID)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(password)))
	b = append(b, password...)
	for _, s := range [...][]byte{salt, secret, data} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	h := blake2b.Sum512(b)
	clear(b)
	a.h0in = b
	return h
}

// argonFirstBlocks sets blocks 0 and 1 of each lane (RFC 9106 §3.2 steps 3
// and 4): B[i][j] = H'^1024(H0 || LE32(j) || LE32(i)).
func argonFirstBlocks(B []argonBlock, h0 *[blake2b.Size]byte, lanes uint32) {
	laneLen := uint32(len(B)) / lanes
	var in [4 + blake2b.Size + 8]byte
	var buf [8 * argonBlockWords]byte
	binary.LittleEndian.PutUint32(in[0:4], uint32(len(buf)))
	copy(in[4:], h0[:])
	for lane := range lanes {
		binary.LittleEndian.PutUint32(in[4+blake2b.Size+4:], lane)
		for j := range uint32(2) {
			binary.LittleEndian.PutUint32(in[4+blake2b.Size:], j)
			hPrime(buf[:], in[:])
			b := &B[lane*laneLen+j]
			for k := range b {
				b[k] = binary.LittleEndian.Uint64(buf[8*k:])
			}
		}
	}
	clear(in[:])
	clear(buf[:])
}

// argonPass computes pass n (from 0) of time passes, slice by slice; within
// a slice the lanes are independent and run one after the other.
func argonPass(B []argonBlock, n, time, lanes uint32) {
	for slice := range uint32(argonSyncPoints) {
		for lane := range lanes {
			argonSegment(B, n, slice, lane, lanes, time)
		}
	}
}

// argonSegment computes one segment (RFC 9106 §3.2 steps 5 and 6, §3.4).
func argonSegment(B []argonBlock, n, slice, lane, lanes, time uint32) {
	m := uint32(len(B))
	laneLen := m / lanes
	segLen := laneLen / argonSyncPoints
	lane0 := B[lane*laneLen : (lane+1)*laneLen]

	// Argon2id takes J1, J2 from generated address blocks (data-independent,
	// as Argon2i) in the first half of the first pass, and from the previous
	// block (as Argon2d) everywhere else.
	independent := n == 0 && slice < argonSyncPoints/2
	var addr, in, zero argonBlock
	if independent {
		in[0] = uint64(n)
		in[1] = uint64(lane)
		in[2] = uint64(slice)
		in[3] = uint64(m)
		in[4] = uint64(time)
		in[5] = argonTypeID
	}

	first := uint32(0)
	if n == 0 && slice == 0 {
		first = 2 // blocks 0 and 1 come from H'
	}
	for i := first; i < segLen; i++ {
		cur := slice*segLen + i
		prev := cur - 1
		if cur == 0 { // first block of a lane, in a pass after the first
			prev = laneLen - 1
		}
		var rnd uint64
		if independent {
			if i%argonBlockWords == 0 || i == first {
				// address block = G(0, G(0, Z || LE64(counter) || 0…))
				in[6]++
				compress(&addr, &zero, &in, false)
				compress(&addr, &zero, &addr, false)
			}
			rnd = addr[i%argonBlockWords]
		} else {
			rnd = lane0[prev][0]
		}
		ref := refIndex(rnd, n, slice, lane, i, lanes, laneLen, segLen)
		// Version 0x13: pass 0 overwrites, later passes XOR into the block.
		compress(&lane0[cur], &lane0[prev], &B[ref], n > 0)
	}
}

// refIndex maps J1 (low half of rnd) and J2 (high half) to the index of the
// reference block in B (RFC 9106 §3.4.2). size is |W|, the number of blocks
// that may be referenced; start is where W begins in the reference lane.
func refIndex(rnd uint64, n, slice, lane, index, lanes, laneLen, segLen uint32) uint32 {
	var refLane uint32 // a division per block costs, and one lane is the usual case
	if n == 0 && slice == 0 {
		refLane = lane // the other lanes have nothing computed yet
	} else if lanes > 1 {
		refLane = uint32(rnd>>32) % lanes
	}
	var size, start uint32
	if n == 0 {
		// Only blocks computed in this pass: finished slices, and in the
		// same lane the blocks of this segment so far.
		size = slice * segLen
	} else {
		// The other three segments of the lane (their last values), and in
		// the same lane this segment's new blocks so far.
		size = laneLen - segLen
		start = (slice + 1) % argonSyncPoints * segLen
	}
	if refLane == lane {
		size += index - 1 // the blocks before the previous one
	} else if index == 0 {
		size-- // §3.4.2: a segment's first block excludes W's last block
	}
	x := rnd & 0xffffffff
	x = x * x >> 32
	y := uint64(size) * x >> 32
	// (start + size-1-y) mod laneLen, without a division: start < laneLen
	// and size ≤ laneLen, so the sum is below 2·laneLen.
	pos := uint64(start) + uint64(size) - 1 - y
	if pos >= uint64(laneLen) {
		pos -= uint64(laneLen)
	}
	return refLane*laneLen + uint32(pos)
}

// argonTag is H'^T of the XOR of the last block of each lane (RFC 9106 §3.2
// steps 7 and 8).
func argonTag(out []byte, B []argonBlock, lanes uint32) {
	laneLen := uint32(len(B)) / lanes
	c := B[laneLen-1]
	for lane := uint32(1); lane < lanes; lane++ {
		last := &B[lane*laneLen+laneLen-1]
		for k := range c {
			c[k] ^= last[k]
		}
	}
	var in [4 + 8*argonBlockWords]byte
	binary.LittleEndian.PutUint32(in[0:4], uint32(len(out)))
	for k, w := range c {
		binary.LittleEndian.PutUint64(in[4+8*k:], w)
	}
	hPrime(out, in[:])
}

// hPrime sets out to H'^T(X) (RFC 9106 §3.3), T = len(out), given
// in = LE32(T) || X.
func hPrime(out, in []byte) {
	if len(out) <= blake2b.Size {
		blake2bSum(out, in)
		return
	}
	v := blake2b.Sum512(in)
	copy(out, v[:32])
	out = out[32:]
	for len(out) > blake2b.Size {
		v = blake2b.Sum512(v[:])
		copy(out, v[:32])
		out = out[32:]
	}
	blake2bSum(out, v[:])
}

// blake2bSum sets out to BLAKE2b with a digest of len(out) (1 to 64) bytes.
func blake2bSum(out, in []byte) {
	switch len(out) {
	case blake2b.Size:
		s := blake2b.Sum512(in)
		copy(out, s[:])
	case blake2b.Size256:
		s := blake2b.Sum256(in)
		copy(out, s[:])
	default:
		h, _ := blake2b.New(len(out), nil) // 1 ≤ len(out) ≤ 64: no error
		h.Write(in)
		h.Sum(out[:0])
	}
}

// compress sets out to G(x, y) (RFC 9106 §3.5), or with xor to
// out ⊕ G(x, y). out may be x or y.
//
// G(X, Y) = Z ⊕ R with R = X ⊕ Y, Q = P on each row of R and Z = P on each
// column of Q. The row step writes R into out (or XORs it in) and Q into t;
// the column step XORs Z into out. Each word of x and y is read before the
// same word of out is written and never after, so out may alias them.
func compress(out, x, y *argonBlock, xor bool) {
	var t argonBlock
	// A row is eight 16-byte registers: words 16i … 16i+15.
	for i := 0; i < argonBlockWords; i += 16 {
		permuteRow((*[16]uint64)(t[i:i+16]), (*[16]uint64)(out[i:i+16]),
			(*[16]uint64)(x[i:i+16]), (*[16]uint64)(y[i:i+16]), xor)
	}
	// Register j of column i is words 16j+2i and 16j+2i+1.
	for i := 0; i < 16; i += 2 {
		permuteColumn((*[114]uint64)(out[i:i+114]), (*[114]uint64)(t[i:i+114]))
	}
}

// permuteRow sets q to P (RFC 9106 §3.6) of r = x ⊕ y, and out to r (or, with
// xor, out ^= r), for one row: v0 … v15 are words 0 … 15.
func permuteRow(q, out, x, y *[16]uint64, xor bool) {
	v0, v1, v2, v3 := x[0]^y[0], x[1]^y[1], x[2]^y[2], x[3]^y[3]
	v4, v5, v6, v7 := x[4]^y[4], x[5]^y[5], x[6]^y[6], x[7]^y[7]
	v8, v9, v10, v11 := x[8]^y[8], x[9]^y[9], x[10]^y[10], x[11]^y[11]
	v12, v13, v14, v15 := x[12]^y[12], x[13]^y[13], x[14]^y[14], x[15]^y[15]
	if xor {
		out[0], out[1], out[2], out[3] = out[0]^v0, out[1]^v1, out[2]^v2, out[3]^v3
		out[4], out[5], out[6], out[7] = out[4]^v4, out[5]^v5, out[6]^v6, out[7]^v7
		out[8], out[9], out[10], out[11] = out[8]^v8, out[9]^v9, out[10]^v10, out[11]^v11
		out[12], out[13], out[14], out[15] = out[12]^v12, out[13]^v13, out[14]^v14, out[15]^v15
	} else {
		out[0], out[1], out[2], out[3] = v0, v1, v2, v3
		out[4], out[5], out[6], out[7] = v4, v5, v6, v7
		out[8], out[9], out[10], out[11] = v8, v9, v10, v11
		out[12], out[13], out[14], out[15] = v12, v13, v14, v15
	}
	v0, v4, v8, v12 = gbHalf(v0, v4, v8, v12, 32, 24)
	v0, v4, v8, v12 = gbHalf(v0, v4, v8, v12, 16, 63)
	v1, v5, v9, v13 = gbHalf(v1, v5, v9, v13, 32, 24)
	v1, v5, v9, v13 = gbHalf(v1, v5, v9, v13, 16, 63)
	v2, v6, v10, v14 = gbHalf(v2, v6, v10, v14, 32, 24)
	v2, v6, v10, v14 = gbHalf(v2, v6, v10, v14, 16, 63)
	v3, v7, v11, v15 = gbHalf(v3, v7, v11, v15, 32, 24)
	v3, v7, v11, v15 = gbHalf(v3, v7, v11, v15, 16, 63)
	v0, v5, v10, v15 = gbHalf(v0, v5, v10, v15, 32, 24)
	v0, v5, v10, v15 = gbHalf(v0, v5, v10, v15, 16, 63)
	v1, v6, v11, v12 = gbHalf(v1, v6, v11, v12, 32, 24)
	v1, v6, v11, v12 = gbHalf(v1, v6, v11, v12, 16, 63)
	v2, v7, v8, v13 = gbHalf(v2, v7, v8, v13, 32, 24)
	v2, v7, v8, v13 = gbHalf(v2, v7, v8, v13, 16, 63)
	v3, v4, v9, v14 = gbHalf(v3, v4, v9, v14, 32, 24)
	v3, v4, v9, v14 = gbHalf(v3, v4, v9, v14, 16, 63)
	q[0], q[1], q[2], q[3] = v0, v1, v2, v3
	q[4], q[5], q[6], q[7] = v4, v5, v6, v7
	q[8], q[9], q[10], q[11] = v8, v9, v10, v11
	q[12], q[13], q[14], q[15] = v12, v13, v14, v15
}

// permuteColumn XORs P of one column of q into out: v(2j) and v(2j+1) are
// words 16j and 16j+1, j = 0 … 7.
func permuteColumn(out, q *[114]uint64) {
	v0, v1, v2, v3 := q[0], q[1], q[16], q[17]
	v4, v5, v6, v7 := q[32], q[33], q[48], q[49]
	v8, v9, v10, v11 := q[64], q[65], q[80], q[81]
	v12, v13, v14, v15 := q[96], q[97], q[112], q[113]
	v0, v4, v8, v12 = gbHalf(v0, v4, v8, v12, 32, 24)
	v0, v4, v8, v12 = gbHalf(v0, v4, v8, v12, 16, 63)
	v1, v5, v9, v13 = gbHalf(v1, v5, v9, v13, 32, 24)
	v1, v5, v9, v13 = gbHalf(v1, v5, v9, v13, 16, 63)
	v2, v6, v10, v14 = gbHalf(v2, v6, v10, v14, 32, 24)
	v2, v6, v10, v14 = gbHalf(v2, v6, v10, v14, 16, 63)
	v3, v7, v11, v15 = gbHalf(v3, v7, v11, v15, 32, 24)
	v3, v7, v11, v15 = gbHalf(v3, v7, v11, v15, 16, 63)
	v0, v5, v10, v15 = gbHalf(v0, v5, v10, v15, 32, 24)
	v0, v5, v10, v15 = gbHalf(v0, v5, v10, v15, 16, 63)
	v1, v6, v11, v12 = gbHalf(v1, v6, v11, v12, 32, 24)
	v1, v6, v11, v12 = gbHalf(v1, v6, v11, v12, 16, 63)
	v2, v7, v8, v13 = gbHalf(v2, v7, v8, v13, 32, 24)
	v2, v7, v8, v13 = gbHalf(v2, v7, v8, v13, 16, 63)
	v3, v4, v9, v14 = gbHalf(v3, v4, v9, v14, 32, 24)
	v3, v4, v9, v14 = gbHalf(v3, v4, v9, v14, 16, 63)
	out[0], out[1], out[16], out[17] = out[0]^v0, out[1]^v1, out[16]^v2, out[17]^v3
	out[32], out[33], out[48], out[49] = out[32]^v4, out[33]^v5, out[48]^v6, out[49]^v7
	out[64], out[65], out[80], out[81] = out[64]^v8, out[65]^v9, out[80]^v10, out[81]^v11
	out[96], out[97], out[112], out[113] = out[96]^v12, out[97]^v13, out[112]^v14, out[113]^v15
}

// gbHalf is half of GB (RFC 9106 §3.6), BLAKE2b's G with each addition
// a + b replaced by a + b + 2·lo32(a)·lo32(b): GB is gbHalf with rotations
// 32, 24 and then 16, 63. Halves keep it under the inliner's budget, so P
// has no calls and the rotation counts are constants.
func gbHalf(a, b, c, d uint64, r1, r2 int) (uint64, uint64, uint64, uint64) {
	a += b + 2*uint64(uint32(a))*uint64(uint32(b))
	d = bits.RotateLeft64(d^a, -r1)
	c += d + 2*uint64(uint32(c))*uint64(uint32(d))
	b = bits.RotateLeft64(b^c, -r2)
	return a, b, c, d
}
