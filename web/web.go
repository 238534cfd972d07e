// Package web is the console's browser side: plain ES modules, a style
// sheet and three vendored npm libraries (preact, preact/hooks, htm),
// embedded in the binary and served by package http under a path that
// names their content's hash, so a browser caches them for good and never
// mixes two versions. There is no build step: the files served are the
// files in static/.
//
// How the pieces fit and how to extend the console (a page, a navigation
// entry, an API call) is docs/CONSOLE.md.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"mime"
	"path"
	"slices"
	"strings"
	"sync"
)

//go:embed static
var static embed.FS

// Pages are the console's addresses: the server answers each with the page
// shell (index.html), and the browser-side router (static/app.js) draws
// the page. A page added to the router is added here too.
var Pages = []string{"/events", "/events/{id}", "/log", "/login", "/login/link",
	"/settings", "/people", "/erasure", "/holds", "/forwarding"}

// Vendored maps each vendored file under static/vendor/ to the npm package
// and file it is a copy of, byte for byte, at the version pinned in
// internal/npmtest/packages.txt, group "console" (TestVendoredFiles checks).
var Vendored = map[string]NPMFile{
	"vendor/preact.mjs": {"preact", "dist/preact.mjs"},
	"vendor/hooks.mjs":  {"preact", "hooks/dist/hooks.mjs"},
	"vendor/htm.mjs":    {"htm", "dist/htm.mjs"},
}

// NPMFile is a file of an npm package.
type NPMFile struct {
	Package, Path string
}

// importMap resolves the bare specifiers the vendored modules and ours
// import ("preact" inside preact/hooks).
var importMap = map[string]string{
	"preact":       "vendor/preact.mjs",
	"preact/hooks": "vendor/hooks.mjs",
	"htm":          "vendor/htm.mjs",
}

// File is one asset, ready to serve.
type File struct {
	Body        []byte
	Gzip        []byte // nil when compression does not pay
	ContentType string
}

// Assets are the embedded files and the page shell that loads them.
type Assets struct {
	// Version is the hash of every file: assets are served under
	// /assets/<Version>/<path>.
	Version string
	// Index is the page shell; CSP the Content-Security-Policy it needs.
	Index *File
	CSP   string
	files map[string]*File
}

// Prefix is where the assets of this version are served.
func (a *Assets) Prefix() string { return "/assets/" + a.Version + "/" }

// File returns the asset at path (relative to static/), or nil.
func (a *Assets) File(path string) *File { return a.files[path] }

// Paths lists the assets, sorted.
func (a *Assets) Paths() []string {
	out := make([]string, 0, len(a.files))
	for p := range a.files {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

var (
	loadOnce sync.Once
	loaded   *Assets
	loadErr  error
)

// Load returns the assets, prepared once.
func Load() (*Assets, error) {
	loadOnce.Do(func() { loaded, loadErr = load() })
	return loaded, loadErr
}

func load() (*Assets, error) {
	a := &Assets{files: map[string]*File{}}
	h := sha256.New()
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "static/")
		if rel == "index.html" {
			return nil
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(rel))
		h.Write([]byte{0})
		h.Write(b)
		a.files[rel] = newFile(b, contentType(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.Version = hex.EncodeToString(h.Sum(nil))[:16]

	tmpl, err := static.ReadFile("static/index.html")
	if err != nil {
		return nil, err
	}
	imports := map[string]string{}
	for k, v := range importMap {
		imports[k] = a.Prefix() + v
	}
	im, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		return nil, err
	}
	// Every module is preloaded at once: no waterfall of imports.
	var preload strings.Builder
	for _, p := range a.Paths() {
		if (strings.HasSuffix(p, ".js") && p != "boot.js") || strings.HasSuffix(p, ".mjs") {
			preload.WriteString(`<link rel="modulepreload" href="` + a.Prefix() + p + `">` + "\n")
		}
	}
	index := strings.NewReplacer(
		"{{importmap}}", string(im),
		"{{preload}}", preload.String(),
		"{{assets}}", a.Prefix(),
	).Replace(string(tmpl))
	a.Index = newFile([]byte(index), "text/html; charset=utf-8")
	sum := sha256.Sum256(im)
	// The import map is the one inline script: allowed by its hash.
	a.CSP = "default-src 'none'; script-src 'self' 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return a, nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func newFile(b []byte, ctype string) *File {
	f := &File{Body: b, ContentType: ctype}
	if len(b) > 512 && !strings.HasPrefix(ctype, "image/png") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		if buf.Len() < len(b) {
			f.Gzip = buf.Bytes()
		}
	}
	return f
}
