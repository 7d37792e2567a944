package tables

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzMRT: no input makes the MRT reader panic or hang; an error names a
// byte offset; what it indexes is well formed (masked prefixes of the
// right length, a peer count, times in order).
func FuzzMRT(f *testing.F) {
	// The first records of the real samples (small ones: big inputs make
	// fuzzing slow; the 70 KB record is left out).
	for _, file := range []string{"bview.20020722.2337.gz", "bview.ipv4_unicast_add_path.gz",
		"bview.ipv6_unicast_add_path.gz", "updates.20100722.2015.gz", "updates.20160811.1600.gz", "updates.et-header.2015.gz",
		"updates.nlri_mask_trailing_bits.gz", "updates.20070211.0141.gz"} {
		b, offs := rawRecords(f, "testdata/mrt/"+file, 4)
		for len(offs) > 1 && len(b) > 2048 {
			b, offs = b[:offs[len(offs)-1]], offs[:len(offs)-1]
		}
		f.Add(b)
	}
	// A RIB_GENERIC record, an AS4_PATH with AS_TRANS, a zero-length record.
	f.Add(append(peerTable(2), appendRecord(nil, 1, 13, 6, []byte{0, 0, 0, 1, 0, 1, 1, 24, 192, 0, 2, 0, 1, 0, 1, 0, 0, 0, 0, 0, 7, 0x40, 2, 4, 2, 1, 0xfd, 0xe8})...))
	f.Add(appendRecord(nil, 1, 12, 1, append([]byte{0, 0, 0, 0, 192, 0, 2, 0, 24, 1, 0, 0, 0, 1, 10, 0, 0, 1, 0xfd, 0xe8, 0, 21},
		0x40, 2, 6, 2, 2, 0x5b, 0xa0, 0x5b, 0xa0, 0xc0, 17, 10, 2, 2, 0, 0, 0xfd, 0xe8, 0, 1, 0, 0)))
	f.Add(appendRecord(nil, 1, 16, 4, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newBuilder()
		err := scanMRT(context.Background(), bytes.NewReader(data), "", b)
		if err != nil && !strings.HasPrefix(err.Error(), "byte offset ") {
			t.Fatalf("error does not name a byte offset: %v", err)
		}
		x := b.finish()
		for i := range x.routes.n {
			r := x.routes.at(i)
			p := r.prefix()
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4() == r.v6 || r.peers == 0 && x.Stats.RIBRecords+x.Stats.Messages > 0 || r.first > r.last {
				t.Fatalf("bad route %+v (%s)", *r, p)
			}
		}
	})
}

// FuzzPathOrigin: the attribute walker never reads out of bounds and
// agrees with itself across AS sizes on well-formed 4-byte paths.
func FuzzPathOrigin(f *testing.F) {
	f.Add([]byte{0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8}, true)
	f.Add([]byte{0x50, 2, 0, 4, 2, 1, 0xfd, 0xe8}, false)
	f.Add([]byte{0x40, 2, 4, 1, 1, 0, 1}, false)
	f.Fuzz(func(t *testing.T, attrs []byte, as4 bool) {
		origin, ok, err := pathOrigin(attrs, as4)
		if err != nil && (ok || origin != 0) {
			t.Fatalf("error with an origin: %d %v %v", origin, ok, err)
		}
		if !ok && origin != 0 {
			t.Fatalf("origin %d without ok", origin)
		}
	})
}
