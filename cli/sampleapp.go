package cli

import (
	"github.com/spf13/cobra"

	"github.com/vigil-backup/vigil/sampleapp"
)

// newSampleAppCommand runs the sample web app that `vigil demo` backs up
// and restore-tests. It is hidden: it exists so the demo needs nothing but
// this binary.
func newSampleAppCommand() *cobra.Command {
	var dir, listen string
	cmd := &cobra.Command{
		Use:    "sample-app --dir DIR --listen HOST:PORT",
		Short:  "Serve the demo's sample web app from DIR",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sampleapp.Serve(cmd.Context(), listen, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "the app's data folder")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	return cmd
}
