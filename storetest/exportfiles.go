package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// failingReader yields n bytes of r, then an error.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the disk went away")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func testExportFiles(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	fs, ok := s.(veritrail.ExportFileStore)
	if !ok {
		t.Skip("this store keeps export files on the node's disk (one process owns it)")
	}
	org := newOrg(t, s, "acme")
	other := newOrg(t, s, "globex")
	data := make([]byte, 2<<20+12345) // more than two chunks of any sensible size
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	n, err := fs.PutExportFile(ctx, org.ID, "exp_1", bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("put: %d %v", n, err)
	}
	f, err := fs.OpenExportFile(ctx, org.ID, "exp_1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (want %d): %v", len(got), len(data), err)
	}
	// Seeking, as HTTP ranges do: the size from the end, then a range
	// across a chunk boundary.
	if end, err := f.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("seek end: %d %v", end, err)
	}
	for _, off := range []int64{0, 1<<20 - 7, 2 << 20, int64(len(data)) - 3} {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		part := make([]byte, 10)
		k, err := io.ReadFull(f, part)
		want := data[off:min(off+10, int64(len(data)))]
		if !bytes.Equal(part[:k], want) || (k < 10 && err != io.ErrUnexpectedEOF) {
			t.Fatalf("at %d: %x %v, want %x", off, part[:k], err, want)
		}
	}
	f.Close()
	// Another organization's id space: nothing there.
	if _, err := fs.OpenExportFile(ctx, other.ID, "exp_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("other org opened the file: %v", err)
	}
	// A put that fails midway leaves nothing (not even the first chunks).
	if _, err := fs.PutExportFile(ctx, org.ID, "exp_2", &failingReader{r: bytes.NewReader(data), n: 1<<20 + 100}); err == nil {
		t.Fatal("a failing reader was stored")
	}
	if _, err := fs.OpenExportFile(ctx, org.ID, "exp_2"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("a failed put left a file: %v", err)
	}
	// An empty file is a file.
	if n, err := fs.PutExportFile(ctx, org.ID, "exp_3", bytes.NewReader(nil)); err != nil || n != 0 {
		t.Fatalf("empty put: %d %v", n, err)
	}
	if f, err := fs.OpenExportFile(ctx, org.ID, "exp_3"); err != nil {
		t.Fatalf("empty file: %v", err)
	} else {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || len(b) != 0 {
			t.Fatalf("empty file read %d bytes: %v", len(b), err)
		}
	}
	if err := fs.DeleteExportFile(ctx, org.ID, "exp_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.OpenExportFile(ctx, org.ID, "exp_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("deleted file still opens: %v", err)
	}
	if err := fs.DeleteExportFile(ctx, org.ID, "exp_1"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}
