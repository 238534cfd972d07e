package datadog_test

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"testing"
)

func writeCA(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	pemb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemb, 0o600); err != nil {
		t.Fatal(err)
	}
}
