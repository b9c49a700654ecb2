package sampleapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	if err := WriteData(dir); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "leak.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "leakdir")); err != nil {
		t.Fatal(err)
	}
	h := Handler(dir)

	tests := []struct {
		path     string
		status   int
		contains string
	}{
		{"/", 200, Welcome},
		{"/about.html", 200, "<h1>About</h1>"},
		{"/data/products.json", 200, `"name": "Sturdy Tape Drive"`},
		{"/docs/guide/getting-started.html", 200, "Getting started"},
		{"/docs/", 200, `<a href="guide/">guide/</a>`},
		{"/missing.html", 404, ""},
		{"/../secret.txt", 307, ""}, // to /secret.txt, which is not there
		{"/leak.txt", 403, ""},
		{"/leakdir/secret.txt", 403, ""},
		{"/leakdir/", 403, ""},
	}
	for _, tc := range tests {
		code, body := get(t, h, tc.path)
		if code != tc.status || !strings.Contains(body, tc.contains) || strings.Contains(body, "not yours") {
			t.Errorf("GET %s = %d %.80q; want %d containing %q", tc.path, code, body, tc.status, tc.contains)
		}
	}

	if err := os.Remove(filepath.Join(dir, Critical)); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, "/")
	if want := fmt.Sprintf("critical file index.html is missing from %s\n", dir); code != 503 || body != want {
		t.Errorf("GET / without %s = %d %q; want 503 %q", Critical, code, body, want)
	}
	if code, _ := get(t, h, "/about.html"); code != 200 {
		t.Errorf("GET /about.html without %s = %d; the other files are still there", Critical, code)
	}
	if err := os.Mkdir(filepath.Join(dir, Critical), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, h, "/"); code != 503 {
		t.Errorf("GET / with a folder for %s = %d, want 503", Critical, code)
	}
	if code, _ := get(t, Handler(filepath.Join(dir, "no-such-folder")), "/"); code != 503 {
		t.Errorf("GET / of a missing folder = %d, want 503", code)
	}
}

func TestWriteData(t *testing.T) {
	dir := t.TempDir()
	if err := WriteData(dir); err != nil {
		t.Fatal(err)
	}
	var total int64
	var files, nested int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		files++
		if rel, _ := filepath.Rel(dir, path); strings.Count(rel, string(filepath.Separator)) >= 2 {
			nested++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total < 150<<10 || total > 400<<10 || files < 6 || nested == 0 {
		t.Errorf("data set: %d files (%d nested two deep), %d bytes; want a few files, a nested folder, a couple hundred KB", files, nested, total)
	}
	index, err := os.ReadFile(filepath.Join(dir, Critical))
	if err != nil || !strings.Contains(string(index), Welcome) {
		t.Errorf("%s: %v; want it to contain %q", Critical, err, Welcome)
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", "products.json"))
	if err != nil {
		t.Fatal(err)
	}
	var products []map[string]any
	if err := json.Unmarshal(b, &products); err != nil || len(products) == 0 {
		t.Errorf("products.json: %d products, %v", len(products), err)
	}

	// The same on every call.
	again := t.TempDir()
	if err := WriteData(again); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data/orders.csv", "assets/noise.bin", "products.html"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(again, name))
		if string(a) != string(b) {
			t.Errorf("%s differs between two calls", name)
		}
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	if err := WriteData(dir); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, addr, dir) }()
	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		cancel()
		t.Fatalf("the app did not answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), Welcome) {
		t.Errorf("GET / = %s %.80q", resp.Status, body)
	}

	if err := Serve(context.Background(), addr, dir); err == nil {
		t.Error("a second Serve on the same address succeeded")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("the app still answers after Serve returned")
	}
}

// The sample app answers 503 once its critical file is gone.
func ExampleHandler() {
	dir, _ := os.MkdirTemp("", "sampleapp-")
	defer os.RemoveAll(dir)
	WriteData(dir)

	for range 2 {
		rec := httptest.NewRecorder()
		Handler(dir).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Println(rec.Code, strings.Contains(rec.Body.String(), Welcome))
		os.Remove(filepath.Join(dir, Critical))
	}
	// Output:
	// 200 true
	// 503 false
}
