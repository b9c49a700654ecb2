// Package sampleapp is the small web app that `vigil demo` backs up and
// restore-tests: it serves its data folder, and is healthy only while its
// critical file is there, so that a backup missing that file is caught by
// an HTTP validator the way a broken real app would be.
package sampleapp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Critical is the file the app needs; without it, / answers 503.
const Critical = "index.html"

// Welcome is in the body of / while the app is healthy.
const Welcome = "Welcome to the vigil sample app"

// Handler serves dir. GET / answers 200 with the content of dir/index.html
// when it exists, else 503 saying it is missing; other paths serve the files
// under dir (folders as listings). Nothing outside dir is served, not even
// through a symlink.
func Handler(dir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		serveCritical(w, r, dir)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Opened per request: the folder may be restored, removed or
		// replaced while the app runs.
		root, err := os.OpenRoot(dir)
		if err != nil {
			http.Error(w, fmt.Sprintf("data folder %s: %v", dir, err), http.StatusServiceUnavailable)
			return
		}
		defer root.Close()
		http.FileServerFS(confined{root.FS()}).ServeHTTP(w, r)
	})
	return mux
}

// confined turns os.Root's refusal of a path that leads outside the folder
// (a symlink out of it) into 403 Forbidden, instead of the 500 that
// http.FileServerFS makes of an error it does not know.
type confined struct{ fs.FS }

func (c confined) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	var errno syscall.Errno
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.As(err, &errno) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f, err
}

func serveCritical(w http.ResponseWriter, r *http.Request, dir string) {
	missing := func(why string) {
		http.Error(w, fmt.Sprintf("critical file %s is missing from %s%s", Critical, dir, why), http.StatusServiceUnavailable)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		missing(fmt.Sprintf(" (%v)", err))
		return
	}
	defer root.Close()
	f, err := root.Open(Critical)
	if errors.Is(err, fs.ErrNotExist) {
		missing("")
		return
	}
	if err != nil {
		missing(fmt.Sprintf(" (%v)", err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		missing(" (not a readable file)")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	http.ServeContent(w, r, Critical, fi.ModTime(), f)
}

// Serve listens on addr and serves dir until ctx is done, then shuts down,
// giving requests in flight a few seconds, and returns nil.
func Serve(ctx context.Context, addr, dir string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: Handler(dir), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	return nil
}

// WriteData fills dir with the sample data set: index.html, a few pages, a
// JSON file, a CSV file and a nested folder, about 200 KB in all. The
// content is the same on every call, so two data sets compare equal.
func WriteData(dir string) error {
	files := map[string][]byte{
		Critical: []byte(page("Home", `<p>`+Welcome+`.</p>
<p>vigil backs this folder up, restores each backup into a new copy, starts
the copy and asks it for this page: a backup is proven restorable only if the
copy answers.</p>
<ul>
  <li><a href="about.html">About</a></li>
  <li><a href="products.html">Products</a></li>
  <li><a href="data/products.json">Products as JSON</a></li>
  <li><a href="data/orders.csv">Orders as CSV</a></li>
  <li><a href="docs/guide/getting-started.html">Getting started</a></li>
</ul>`)),
		"about.html":                      []byte(page("About", "<p>A sample shop whose data vigil keeps safe.</p>")),
		"products.html":                   []byte(page("Products", productsTable())),
		"docs/guide/getting-started.html": []byte(page("Getting started", "<p>Remove index.html and back up again: the restore test fails.</p>")),
		"assets/style.css":                []byte("body { font-family: sans-serif; margin: 2em auto; max-width: 40em; }\ntable { border-collapse: collapse; }\ntd, th { border: 1px solid #ccc; padding: 0.2em 0.5em; }\n"),
		"data/products.json":              productsJSON(),
		"data/orders.csv":                 ordersCSV(),
		"assets/noise.bin":                noise(32 << 10),
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write sample data: %w", err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return fmt.Errorf("write sample data: %w", err)
		}
	}
	return nil
}

func page(title, body string) string {
	return fmt.Sprintf(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>%s · vigil sample app</title><link rel="stylesheet" href="/assets/style.css"></head>
<body>
<h1>%s</h1>
%s
</body>
</html>
`, title, title, body)
}

type product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
	Stock int     `json:"stock"`
}

// products is the shop's catalogue, the same on every call.
func products() []product {
	adjectives := []string{"Sturdy", "Quiet", "Bright", "Compact", "Classic", "Spare", "Rugged", "Tiny"}
	nouns := []string{"Tape Drive", "Disk Shelf", "Vault Door", "Archive Box", "Backup Battery", "Checksum Card", "Restore Lever", "Snapshot Camera"}
	var ps []product
	for i := range 64 {
		ps = append(ps, product{
			ID:    i + 1,
			Name:  adjectives[i%len(adjectives)] + " " + nouns[i/len(adjectives)],
			Price: float64(500+i*137%9000) / 100,
			Stock: i * 7 % 50,
		})
	}
	return ps
}

func productsTable() string {
	var b strings.Builder
	b.WriteString("<table>\n<tr><th>ID</th><th>Name</th><th>Price</th><th>Stock</th></tr>\n")
	for _, p := range products() {
		fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td><td>%.2f</td><td>%d</td></tr>\n", p.ID, p.Name, p.Price, p.Stock)
	}
	b.WriteString("</table>")
	return b.String()
}

func productsJSON() []byte {
	var b strings.Builder
	b.WriteString("[\n")
	for i, p := range products() {
		sep := ","
		if i == len(products())-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  {\"id\": %d, \"name\": %q, \"price\": %.2f, \"stock\": %d}%s\n", p.ID, p.Name, p.Price, p.Stock, sep)
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// ordersCSV is about 150 KB of orders, the bulk of the data set.
func ordersCSV() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	ps := products()
	var b strings.Builder
	b.WriteString("order_id,date,product_id,quantity,customer\n")
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3500 {
		p := ps[r.IntN(len(ps))]
		fmt.Fprintf(&b, "%d,%s,%d,%d,customer-%04d\n", 10000+i, start.Add(time.Duration(i)*97*time.Minute).Format(time.DateOnly), p.ID, 1+r.IntN(9), r.IntN(2000))
	}
	return []byte(b.String())
}

// noise is incompressible, like the photos of a real site.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
