package web

import (
	"io"
	"mime/multipart"
	"net/http"
	"stompbox/internal/files"
	"stompbox/internal/store"
	"strconv"
	"strings"
)

// Download headers (issue 17). An uploaded file is served from the app's
// own origin, so it must never run as part of the app: nosniff stops a
// browser from guessing HTML or script; the sandbox CSP makes even a
// document opened directly a unique origin without script; everything but
// a safe raster picture is an attachment with an opaque type.
const (
	FileCSP          = "sandbox; default-src 'none'"
	fileCacheControl = "private, no-cache" // revalidated every time, so access is checked on every request
	FileOpaqueType   = "application/octet-stream"

	// multipartSlack is what a multipart body may carry beyond the file:
	// the boundaries and part headers of one file and a few small fields.
	multipartSlack = 64 << 10

	// uploadFormField is the multipart field that carries the file.
	uploadFormField = "file"
)

// filesRoutes registers the upload and download routes on mux.
func (a *API) filesRoutes(mux *http.ServeMux) {
	mux.Handle("POST /api/rooms/{id}/files", a.Authed(a.upload))
	mux.Handle("GET /api/files/{fileID}", a.Authed(a.download(false)))
	mux.Handle("GET /api/files/{fileID}/thumb", a.Authed(a.download(true)))
	mux.Handle("DELETE /api/files/{fileID}", a.Authed(a.deleteUnsent))
}

// deleteUnsent serves DELETE /api/files/{fileID}: the uploader takes back
// an upload not sent yet (204); anything else is 404.
func (a *API) deleteUnsent(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := filePathID(r)
	if err != nil {
		return err
	}
	if err := a.files.DeleteUnsent(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// filePathID parses the {fileID} path segment; a malformed id names no file.
func filePathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("fileID"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrUnknownFile
	}
	return id, nil
}

// upload serves POST /api/rooms/{id}/files: a multipart/form-data body
// whose "file" part is streamed to disk (one file per request; a browser
// sends several at once as parallel requests). 201 with the attachment
// JSON; 413 over -max-upload or the quota, 400 for an empty, truncated or
// non-multipart body, 403 for a room u may not post to.
func (a *API) upload(w http.ResponseWriter, r *http.Request, u store.User) error {
	id, err := roomPathID(r)
	if err != nil {
		return err
	}
	if r.ContentLength > a.files.MaxBytes+multipartSlack {
		return files.UploadTooLargeError{MaxMiB: a.files.MaxBytes >> 20}
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.files.MaxBytes+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		return files.ErrNotMultipart
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return files.ErrNotMultipart
		}
		if err != nil {
			if files.IsBodyTooLarge(err) {
				return files.UploadTooLargeError{MaxMiB: a.files.MaxBytes >> 20}
			}
			return files.ErrUploadIncomplete
		}
		if part.FormName() != uploadFormField {
			part.Close()
			continue
		}
		f, err := a.files.Upload(r.Context(), u, id, partFileName(part), part)
		if err != nil {
			return err
		}
		return writeAPIJSON(w, http.StatusCreated, f.Attachment())
	}
}

// partFileName is the file name a part was sent with, unsanitized
// (Upload sanitizes). multipart's FileName keeps only the last element of
// a slash path; a backslash path arrives whole.
func partFileName(p *multipart.Part) string {
	if n := p.FileName(); n != "" {
		return n
	}
	return "file"
}

// download serves GET /api/files/{fileID} and …/thumb, checking access on
// every request (fileService.Open), with the headers of fileCSP and a
// strong ETag from the content hash; Range and conditional requests are
// http.ServeContent's.
func (a *API) download(thumb bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, u store.User) error {
		id, err := filePathID(r)
		if err != nil {
			return err
		}
		f, file, err := a.files.Open(r.Context(), u, id, thumb)
		if err != nil {
			return err
		}
		defer file.Close()
		typ, etag, disposition := f.Type, f.SHA256, "attachment"
		if thumb {
			typ, etag = f.ThumbType, f.ThumbSHA256
		}
		if files.IsSafeRaster(typ) {
			disposition = "inline"
		} else {
			typ = FileOpaqueType
		}
		h := w.Header()
		h.Set("Content-Type", typ)
		h.Set("Content-Disposition", contentDisposition(disposition, f.Name))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", FileCSP)
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", fileCacheControl)
		h.Set("ETag", `"`+etag+`"`)
		http.ServeContent(w, r, "", f.CreatedAt, file)
		return nil
	}
}

// contentDisposition builds a Content-Disposition value with the name
// twice: an ASCII fallback in filename (quotes, backslashes and non-ASCII
// replaced) and the exact name in filename*, UTF-8 percent-encoded as RFC
// 5987 §3.2 (RFC 6266 §4.3) says, which every current browser prefers.
func contentDisposition(kind, name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		if r < 0x20 || r >= 0x7f || r == '"' || r == '\\' {
			ascii.WriteByte('_')
		} else {
			ascii.WriteRune(r)
		}
	}
	for _, c := range []byte(name) {
		if isAttrChar(c) {
			ext.WriteByte(c)
		} else {
			ext.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)>>4, 16)+strconv.FormatUint(uint64(c)&15, 16)))
		}
	}
	return kind + `; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar reports whether c may appear unencoded in an RFC 5987
// ext-value (attr-char).
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
