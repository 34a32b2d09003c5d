package bucket

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// blocksData is the data of GET /api/v1/blocks.
type blocksData struct {
	// Blocks are the complete blocks, sorted by SortBlocks.
	Blocks []BlockInfo `json:"blocks"`
	// TenantLabel is the external label the blocks' Tenant comes from.
	TenantLabel string `json:"tenant_label"`
}

// Handler serves the bucket's blocks over HTTP for the web UI and scripts, in
// Prometheus' response envelope ({"status": "success", "data": ...}):
//
//   - GET /api/v1/blocks lists every complete block as List returns it. Blocks
//     whose meta.json does not read are left out and named in "warnings".
//   - GET /api/v1/blocks/{ulid} answers one block's meta.json as stored, with
//     its marks, or 404.
//
// Every request reads the bucket; nothing is cached. The handler shows every
// tenant's blocks: mount it only where every caller may see them.
type Handler struct {
	bkt    objstore.BucketReader
	logger *slog.Logger
}

// NewHandler returns a Handler over bkt.
func NewHandler(bkt objstore.BucketReader, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{bkt: bkt, logger: logger}
}

// Register adds the handler's endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/blocks", h.serveList)
	mux.HandleFunc("GET /api/v1/blocks/{ulid}", h.serveBlock)
}

func (h *Handler) serveList(w http.ResponseWriter, r *http.Request) {
	blocks, err := List(r.Context(), h.bkt, ListOptions{})
	if blocks == nil {
		if err != nil && r.Context().Err() == nil {
			h.writeError(w, http.StatusInternalServerError, "internal", err)
			return
		}
		blocks = []BlockInfo{}
	}
	var warnings []string
	if err != nil {
		// List joins one error per unreadable block, next to the blocks that did read.
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				warnings = append(warnings, e.Error())
			}
		} else {
			warnings = append(warnings, err.Error())
		}
	}
	h.writeSuccess(w, blocksData{Blocks: blocks, TenantLabel: TenantLabel}, warnings)
}

// blockDetail is the data of GET /api/v1/blocks/{ulid}.
type blockDetail struct {
	Meta  *block.Meta `json:"meta"`
	Marks []string    `json:"marks"`
}

func (h *Handler) serveBlock(w http.ResponseWriter, r *http.Request) {
	id, err := ulid.ParseStrict(r.PathValue("ulid"))
	if err != nil {
		h.writeError(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	entries, err := blockEntries(r.Context(), h.bkt, id)
	if err != nil {
		h.writeError(w, http.StatusInternalServerError, "internal", err)
		return
	}
	if !entries[block.MetaFilename] {
		h.writeError(w, http.StatusNotFound, "not_found", errors.New("no complete block "+id.String()+" in the bucket"))
		return
	}
	meta, err := block.ReadMetaFromBucket(r.Context(), h.bkt, id)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, objstore.ErrNotFound) {
			code = http.StatusNotFound
		}
		h.writeError(w, code, "internal", err)
		return
	}
	marks := []string{}
	for _, f := range markerFiles {
		if entries[f] {
			marks = append(marks, f)
		}
	}
	h.writeSuccess(w, blockDetail{Meta: meta, Marks: marks}, nil)
}

func (h *Handler) writeSuccess(w http.ResponseWriter, data any, warnings []string) {
	h.write(w, http.StatusOK, struct {
		Status   string   `json:"status"`
		Data     any      `json:"data"`
		Warnings []string `json:"warnings,omitempty"`
	}{"success", data, warnings})
}

func (h *Handler) writeError(w http.ResponseWriter, code int, typ string, err error) {
	h.write(w, code, struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", typ, err.Error()})
}

func (h *Handler) write(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if _, err := w.Write(b); err != nil {
		h.logger.Debug("write blocks response", "err", err)
	}
}
