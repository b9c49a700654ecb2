package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/object"
	"github.com/kopia/kopia/snapshot"

	"github.com/vigil-backup/vigil/internal/units"
)

// VerifyResult reports what Verify checked and what it found wrong.
type VerifyResult struct {
	// Contents and Packs count what the index names: every content was
	// checked to lie within a pack that exists and is long enough.
	Contents, Packs int64
	Snapshots       int64
	// SnapshotIDs lists the complete snapshots found, so that a caller can
	// tell which of the snapshots it expects are gone.
	SnapshotIDs []string
	// Files and Dirs count distinct objects: a file that is identical in
	// several snapshots is checked once. Every folder listing is read.
	Files, Dirs int64
	// ReadDataPercent is the share of files asked to be read back; FilesRead
	// and BytesRead count the files whose contents were read and decrypted.
	ReadDataPercent      float64
	FilesRead, BytesRead int64
	// PackProblems lists the packs that are missing or shorter than the
	// index needs; found without reading any data.
	PackProblems []string
	// Damaged lists, by snapshot id, the snapshots with a problem.
	Damaged map[string]SnapshotDamage
	// Repaired lists the snapshots a repair rewrote without their damaged
	// entries: whole now, but no longer all that was backed up.
	Repaired []string
	// Unattributed lists problems that belong to no snapshot found, such
	// as a snapshot manifest that cannot be read.
	Unattributed []string
	// Errors lists every problem found, the pack problems first, then each
	// damaged snapshot's, naming the snapshot, its resource and the path.
	Errors []string
	// ByTool, when set, is the summary of a check that another tool ran
	// on a foreign vault (restic check): Summary returns it.
	ByTool string
	// Advice says what to do about the problems; "" when there are none.
	Advice string
}

// SnapshotDamage is what Verify found wrong in one snapshot.
type SnapshotDamage struct {
	Resource string
	// RecoveryPoint is the snapshot's vigil:recovery-point tag, if any.
	RecoveryPoint string
	// Problems name the path and what is wrong with it, such as
	// "/data/a.txt: content … is in pack …, which is missing from storage".
	Problems []string

	more int // problems past maxVerifyErrors, not listed
}

// Summary says in words what was checked and what was found, such as
// "index and pack sizes checked, every folder listing read; 10% of file
// contents (322 of 3,043 files) read back: no damage found". It never says
// more was checked than was.
func (r VerifyResult) Summary() string {
	if r.ByTool != "" {
		return r.ByTool
	}
	var b strings.Builder

	fmt.Fprintf(&b, "index and pack sizes checked (%s in %s), folder listings of %s read; ",
		units.Plural(int(r.Contents), "content"), units.Plural(int(r.Packs), "pack"), units.Plural(int(r.Snapshots), "snapshot"))

	switch {
	case r.Files == 0:
		b.WriteString("no file contents to read back")
	case r.FilesRead == 0:
		b.WriteString("no file contents read back (use --read-data-percent to read them)")
	case r.FilesRead == r.Files:
		fmt.Fprintf(&b, "all file contents (%s, %s) read back", units.Plural(int(r.Files), "file"), units.Bytes(r.BytesRead))
	default:
		fmt.Fprintf(&b, "%v%% of file contents (%d of %d files, %s) read back", r.ReadDataPercent, r.FilesRead, r.Files, units.Bytes(r.BytesRead))
	}

	if len(r.Errors) == 0 {
		b.WriteString(": no damage found")
	} else {
		fmt.Fprintf(&b, ": %s found", units.Plural(len(r.Errors), "problem"))
	}

	return b.String()
}

// maxVerifyErrors bounds the problems Verify collects per snapshot and for
// packs; past that, the vault is badly damaged and more detail does not help.
const maxVerifyErrors = 1000

// Verify checks the vault in two parts. The first reads no data: every
// content the index names must lie in a pack that exists in storage and is
// at least as long as the index needs, and every complete snapshot's folder
// listings must be readable and every content they reference indexed. The
// second reads back and decrypts readDataPercent (0 to 100) percent of the
// files, chosen at random.
//
// Problems are collected, not fatal: when any is found, the result lists them
// and the error wraps ErrCorrupt. Other errors (the vault cannot be opened,
// ctx is cancelled) are returned as they are.
func (v *Vault) Verify(ctx context.Context, readDataPercent float64) (VerifyResult, error) {
	if readDataPercent < 0 || readDataPercent > 100 {
		return VerifyResult{}, fmt.Errorf("verify vault %q: percentage of data to read must be between 0 and 100, not %v", v.cfg.Name, readDataPercent)
	}

	release, err := v.shared(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	defer release()

	rep, err := v.openReadOnly(ctx)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify vault %q: %w", v.cfg.Name, err)
	}
	defer rep.Close(ctx) //nolint:errcheck

	// Reading all the data reads every pack: read each whole once (see
	// packCache). A part of the data is a sample of files, whose packs a
	// whole read would fetch far more of than the sample needs.
	if readDataPercent == 100 {
		var dropPacks func()
		ctx, dropPacks = withPackCache(ctx, v.cfg.Tuning.PackCacheBytes)
		defer dropPacks()
	}

	res, err := verify(ctx, rep, readDataPercent)
	if err != nil {
		return res, fmt.Errorf("verify vault %q: %w", v.cfg.Name, err)
	}

	// The vault's own connection learns what verify saw: after storage was
	// rolled back or lost an index, it would otherwise go on looking for
	// what is gone.
	if err := v.rep.Refresh(ctx); err != nil {
		return res, fmt.Errorf("verify vault %q: refresh: %w", v.cfg.Name, err)
	}

	if ctxErr := ctx.Err(); ctxErr != nil {
		return res, fmt.Errorf("verify vault %q: cancelled: %w", v.cfg.Name, ctxErr)
	}

	if n := len(res.Errors); n > 0 {
		res.Advice = fmt.Sprintf("run `vigil vault repair %s`, then back up the affected resources again (into another vault if its storage is failing)", v.cfg.Name)
		return res, fmt.Errorf("verify vault %q: %d problem(s), first: %s: %w; %s", v.cfg.Name, n, res.Errors[0], ErrCorrupt, res.Advice)
	}

	return res, nil
}

// openReadOnly opens a second, read-only connection to the vault, so that
// verifying can never write to it, and so that it reads the vault's current
// indexes rather than what this process has loaded.
func (v *Vault) openReadOnly(ctx context.Context) (repo.DirectRepository, error) {
	configFile, err := writeConnectionConfig(v.cfg, verifyConfigFileName, true)
	if err != nil {
		return nil, err
	}

	r, err := repo.Open(ctx, configFile, v.cfg.Password, v.repoOptions())
	if err != nil {
		return nil, fmt.Errorf("open vault read-only: %w", err)
	}

	dr, ok := r.(repo.DirectRepository)
	if !ok {
		r.Close(ctx) //nolint:errcheck
		return nil, errors.New("open vault read-only: not a direct repository")
	}

	return dr, nil
}

// packCheck is the outcome of checking the index against storage: the
// contents that lie outside what storage holds, and why.
type packCheck struct {
	contents, packs int64
	bad             map[content.ID]string
	problems        []string
}

// checkPacks checks, without reading any data, that every content the
// index names lies within a pack that exists and is long enough.
func checkPacks(ctx context.Context, rep repo.DirectRepository, blobs map[blob.ID]blob.Metadata) (packCheck, error) {
	pc := packCheck{bad: map[content.ID]string{}}

	type need struct {
		end      int64
		contents int
	}

	packs := map[blob.ID]*need{}

	err := rep.ContentReader().IterateContents(ctx, content.IterateOptions{}, func(ci content.Info) error {
		pc.contents++

		n := packs[ci.PackBlobID]
		if n == nil {
			n = &need{}
			packs[ci.PackBlobID] = n
		}

		n.contents++
		end := int64(ci.PackOffset) + int64(ci.PackedLength)
		n.end = max(n.end, end)

		bm, ok := blobs[ci.PackBlobID]

		switch {
		case !ok:
			pc.bad[ci.ContentID] = fmt.Sprintf("content %v is in pack %v, which is missing from storage", ci.ContentID, ci.PackBlobID)
		case bm.Length < end:
			pc.bad[ci.ContentID] = fmt.Sprintf("content %v ends at byte %d of pack %v, which holds only %d bytes", ci.ContentID, end, ci.PackBlobID, bm.Length)
		}

		return nil
	})
	if err != nil {
		return pc, fmt.Errorf("read the index: %w", err)
	}

	pc.packs = int64(len(packs))

	for id, n := range packs {
		bm, ok := blobs[id]

		switch {
		case !ok:
			pc.problems = append(pc.problems, fmt.Sprintf("pack %v is missing from storage (the index names %d contents in it)", id, n.contents))
		case bm.Length < n.end:
			pc.problems = append(pc.problems, fmt.Sprintf("pack %v holds %d bytes; the index needs %d", id, bm.Length, n.end))
		}
	}

	return pc, nil
}

// verifier walks snapshot trees. Each distinct folder is read once and each
// distinct file checked once, and what was found in a folder's subtree is
// kept, so that every snapshot sharing it is told about its damage.
type verifier struct {
	rep             repo.DirectRepository
	packs           packCheck
	readDataPercent float64

	// dirs holds each folder's problems, with paths relative to it.
	dirs map[object.ID][]string
	// files holds each file's problem, "" when it has none; others the
	// same for entries that are neither files nor folders.
	files, others map[object.ID]string

	// readQueue takes the files picked to be read back; nil once they
	// have all been read, and readProblems holds what went wrong.
	readQueue            chan object.ID
	readMu               sync.Mutex
	readProblems         map[object.ID]string
	filesRead, bytesRead int64
}

func newVerifier(rep repo.DirectRepository, pc packCheck, readDataPercent float64) *verifier {
	return &verifier{rep: rep, packs: pc, readDataPercent: readDataPercent,
		dirs: map[object.ID][]string{}, files: map[object.ID]string{}, others: map[object.ID]string{},
		readProblems: map[object.ID]string{}}
}

// startReaders starts n readers of the files picked for read-back; the
// returned function waits until all are read.
func (vf *verifier) startReaders(ctx context.Context, n int) (wait func()) {
	vf.readQueue = make(chan object.ID, n)

	var wg sync.WaitGroup

	for range n {
		wg.Go(func() {
			for oid := range vf.readQueue {
				n, problem := vf.readBack(ctx, oid)

				vf.readMu.Lock()
				vf.filesRead++
				vf.bytesRead += n

				if problem != "" {
					vf.readProblems[oid] = problem
				}
				vf.readMu.Unlock()
			}
		})
	}

	return func() {
		close(vf.readQueue)
		wg.Wait()
		vf.readQueue = nil
	}
}

// readBack reads a file's contents and decrypts them.
func (vf *verifier) readBack(ctx context.Context, oid object.ID) (int64, string) {
	r, err := vf.rep.OpenObject(ctx, oid)
	if err != nil {
		return 0, fmt.Sprintf("open object %v: %v", oid, err)
	}
	defer r.Close() //nolint:errcheck

	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return n, fmt.Sprintf("read object %v: %v", oid, err)
	}

	return n, ""
}

func verify(ctx context.Context, rep repo.DirectRepository, readDataPercent float64) (VerifyResult, error) {
	res := VerifyResult{ReadDataPercent: readDataPercent, Damaged: map[string]SnapshotDamage{}}

	blobs, err := blob.ReadBlobMap(ctx, rep.BlobReader())
	if err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}

	pc, err := checkPacks(ctx, rep, blobs)
	if err != nil {
		return res, err
	}

	res.Contents, res.Packs = pc.contents, pc.packs
	res.PackProblems = pc.problems[:min(len(pc.problems), maxVerifyErrors)]
	res.Errors = append(res.Errors, res.PackProblems...)

	ids, err := snapshot.ListSnapshotManifests(ctx, rep, nil, nil)
	if err != nil {
		return res, fmt.Errorf("list snapshots: %w", err)
	}

	var mans []*snapshot.Manifest

	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}

		man, err := snapshot.LoadSnapshot(ctx, rep, id)
		if err != nil {
			problem := fmt.Sprintf("snapshot %s: cannot load its manifest: %v", id, err)
			res.Unattributed = append(res.Unattributed, problem)
			res.Errors = append(res.Errors, problem)

			continue
		}

		if man.IncompleteReason != "" {
			continue
		}

		res.Snapshots++
		res.SnapshotIDs = append(res.SnapshotIDs, string(man.ID))

		if _, ok := man.Tags[tagPrefix+repairedTag]; ok {
			res.Repaired = append(res.Repaired, string(man.ID))
		}

		mans = append(mans, man)
	}

	vf := newVerifier(rep, pc, readDataPercent)

	// Files are read back while the walk goes on. Their problems are known
	// only at its end, so when one turns up, the trees are walked again with
	// what was read, to tell every snapshot that shares the file.
	wait := vf.startReaders(ctx, parallelism(0, defaultUploadParallelism))
	damage := vf.walk(ctx, mans)

	wait()

	if len(vf.readProblems) > 0 {
		files, dirs := vf.files, vf.dirs
		vf.files, vf.dirs, vf.others = map[object.ID]string{}, map[object.ID][]string{}, map[object.ID]string{}
		damage = vf.walk(ctx, mans)
		vf.files, vf.dirs = files, dirs
	}

	for _, man := range mans {
		d, ok := damage[string(man.ID)]
		if !ok {
			continue
		}

		res.Damaged[string(man.ID)] = d

		for _, p := range d.Problems {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %s", d.Label(string(man.ID)), p))
		}

		if d.more > 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: and %d more problems, not listed", d.Label(string(man.ID)), d.more))
		}
	}

	res.Files, res.Dirs = int64(len(vf.files)), int64(len(vf.dirs))
	res.FilesRead, res.BytesRead = vf.filesRead, vf.bytesRead

	return res, nil
}

// walk checks the trees of mans and returns the damage found, by snapshot.
func (vf *verifier) walk(ctx context.Context, mans []*snapshot.Manifest) map[string]SnapshotDamage {
	damage := map[string]SnapshotDamage{}

	for _, man := range mans {
		if ctx.Err() != nil {
			break
		}

		var problems []string
		if man.RootEntry == nil {
			problems = []string{"the snapshot has no root folder"}
		} else {
			problems = vf.entry(ctx, man.RootEntry, "")
		}

		if len(problems) == 0 {
			continue
		}

		d := SnapshotDamage{Resource: man.Source.UserName, RecoveryPoint: man.Tags[tagPrefix+recoveryPointTag]}
		d.Problems = problems[:min(len(problems), maxVerifyErrors)]
		d.more = len(problems) - len(d.Problems)
		damage[string(man.ID)] = d
	}

	return damage
}

// recoveryPointTag is the tag vigil's backups give a snapshot, naming the
// recovery point it is.
const recoveryPointTag = "vigil:recovery-point"

// repairedTag marks a snapshot that Repair rewrote without its damaged
// entries; its value says what was removed.
const repairedTag = "vigil:repaired"

// Label names the snapshot for a person: by its recovery point and resource
// when it has one, else by its kopia id.
func (d SnapshotDamage) Label(snapshotID string) string {
	if d.RecoveryPoint != "" {
		return fmt.Sprintf("recovery point %s of %s", d.RecoveryPoint, d.Resource)
	}

	return fmt.Sprintf("snapshot %s of %s", snapshotID, d.Resource)
}

// entry checks one entry and, for a folder, everything under it, and
// returns the problems found, each starting with its path.
func (vf *verifier) entry(ctx context.Context, e *snapshot.DirEntry, p string) []string {
	if ctx.Err() != nil {
		return nil
	}

	if e.Type != snapshot.EntryTypeDirectory {
		seenIn := vf.files
		if e.Type != snapshot.EntryTypeFile {
			// symbolic links hold their target in an object too
			seenIn = vf.others
		}

		problem, seen := seenIn[e.ObjectID]
		if !seen {
			problem = vf.file(ctx, e.ObjectID, e.Type == snapshot.EntryTypeFile)
			seenIn[e.ObjectID] = problem
		}

		if problem == "" {
			return nil
		}

		return []string{orRoot(p) + ": " + problem}
	}

	problems, seen := vf.dirs[e.ObjectID]
	if !seen {
		problems = vf.dir(ctx, e.ObjectID)
		vf.dirs[e.ObjectID] = problems
	}

	out := make([]string, 0, len(problems))
	for _, prob := range problems {
		if strings.HasPrefix(prob, ":") { // the folder itself
			out = append(out, orRoot(p)+prob)
		} else {
			out = append(out, p+prob)
		}
	}

	return out
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}

	return p
}

// dir reads a folder's listing and checks its entries; problem paths are
// relative to the folder, starting with "/", or "" for the folder itself.
func (vf *verifier) dir(ctx context.Context, oid object.ID) []string {
	if problem := vf.contents(ctx, oid); problem != "" {
		return []string{": folder listing " + problem}
	}

	entries, err := readListing(ctx, vf.rep, oid)
	if err != nil {
		return []string{": folder listing unreadable: " + err.Error()}
	}

	var problems []string

	for _, child := range entries {
		problems = append(problems, vf.entry(ctx, child, "/"+child.Name)...)
		if len(problems) > maxVerifyErrors {
			break
		}
	}

	return problems
}

// file checks a file's contents against the index and packs, and queues
// it to be read back if it is a regular file among the share picked. Once
// the reads are done, it reports what reading found instead.
func (vf *verifier) file(ctx context.Context, oid object.ID, regular bool) string {
	if oid == object.EmptyID {
		return ""
	}

	if problem := vf.contents(ctx, oid); problem != "" {
		return problem
	}

	switch {
	case !regular:
		return ""
	case vf.readQueue == nil:
		return vf.readProblems[oid]
	case vf.readDataPercent == 0 || rand.Float64()*100 >= vf.readDataPercent:
		return ""
	}

	vf.readQueue <- oid

	return ""
}

// contents checks, without reading data, that every content of an object
// is indexed and within its pack; "" when all are.
func (vf *verifier) contents(ctx context.Context, oid object.ID) string {
	contentIDs, err := vf.rep.VerifyObject(ctx, oid)
	if err != nil {
		return fmt.Sprintf("object %v: %v", oid, err)
	}

	for _, cid := range contentIDs {
		if problem, ok := vf.packs.bad[cid]; ok {
			return problem
		}

		if _, err := vf.rep.ContentInfo(ctx, cid); err != nil {
			return fmt.Sprintf("content %v: %v", cid, err)
		}
	}

	return ""
}

// readListing reads a folder's entries as stored.
func readListing(ctx context.Context, rep repo.Repository, oid object.ID) ([]*snapshot.DirEntry, error) {
	r, err := rep.OpenObject(ctx, oid)
	if err != nil {
		return nil, fmt.Errorf("open listing %v: %w", oid, err)
	}
	defer r.Close() //nolint:errcheck

	var listing snapshot.DirManifest
	if err := json.NewDecoder(r).Decode(&listing); err != nil {
		return nil, fmt.Errorf("decode listing %v: %w", oid, err)
	}

	if listing.StreamType != directoryStreamType {
		return nil, fmt.Errorf("object %v is not a folder listing", oid)
	}

	return listing.Entries, nil
}
