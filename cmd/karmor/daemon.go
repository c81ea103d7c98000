package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/kubearmor/kubearmor-host/daemon/api/client"
)

// Exit statuses scripts can rely on.
const (
	exitFailed   = 1 // the check failed (a policy file is bad)
	exitUsage    = 2 // bad flags or arguments, or another error
	exitNoDaemon = 3 // the daemon is not running or does not answer
)

// socketFlag is the root's --socket.
const socketFlag = "socket"

// dial connects to the daemon named by --socket.
func dial(cmd *cobra.Command) (*client.Client, error) {
	socket, _ := cmd.Flags().GetString(socketFlag)
	return client.Dial(socket)
}

// noDaemon reports whether err says the daemon is not there.
func noDaemon(err error) bool { return errors.Is(err, client.ErrNoDaemon) }

// printJSON writes a reply as indented JSON (protobuf's JSON mapping, every
// field present).
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
