// Package app is the resource type of an app: a folder of data plus the
// command that runs a copy of it. A restore test restores the folder into
// a new instance, starts the app there on a free loopback port, and probes
// it (HTTP, TCP, commands) before it stops the app and deletes the folder.
package app

import (
	"context"

	"github.com/vigil-backup/vigil"
	"github.com/vigil-backup/vigil/config"
	"github.com/vigil-backup/vigil/instance"
	"github.com/vigil-backup/vigil/resource"
	"github.com/vigil-backup/vigil/resource/directory"
	"github.com/vigil-backup/vigil/validate"
)

// Type is the app resource type.
type Type struct{}

var (
	_ resource.Type    = Type{}
	_ resource.Starter = (*Copy)(nil)
)

func (Type) Name() string { return "app" }

func (Type) Open(cfg config.Resource, env resource.Env) (resource.Resource, error) {
	return &App{Folder: directory.NewFolder(cfg, env)}, nil
}

// App backs up and restores like a folder; only its restore tests differ.
type App struct {
	*directory.Folder
}

func (a *App) Copy(_ *vigil.RestoreJob, inst *instance.Instance) (resource.Copy, error) {
	return &Copy{FolderCopy: directory.NewFolderCopy(inst, a.Config()), cfg: a.Config()}, nil
}

// Copy is a restored app: its folder, and once started its process.
type Copy struct {
	*directory.FolderCopy
	cfg config.Resource
}

// Start runs the app in the copy's folder (instance.Instance.Start).
func (c *Copy) Start(log func(string), opts resource.StartOptions) (resource.Running, error) {
	cfg := c.cfg
	cfg.Isolation, cfg.Limits = opts.Isolation, opts.Limits
	p, err := c.Inst.Start(cfg, log)
	if err != nil {
		return nil, err
	}
	return running{p}, nil
}

// running is the started app.
type running struct{ *instance.Process }

func (r running) Reach() validate.Reach {
	if reach := r.Process.Reach(); reach != nil {
		return reach
	}
	return nil // not a non-nil interface holding nothing
}

// Delete has nothing of its own to delete: removing the instance stops the
// app's processes and deletes its folder.
func (c *Copy) Delete(ctx context.Context) (string, error) {
	return ": its processes were terminated and its folder removed", nil
}
