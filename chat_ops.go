package main

// The chat service's side of the store's ops: what its ops do on this
// node after they commit.

// chatEffect is a chat op with an effect after its commit, run on every
// node in commit order: delivering the change to that node's own clients.
// It must be quick and must not write to the store.
type chatEffect interface {
	committed(c *chatService)
}

// Committed runs a committed op's effect on this node's clients
// (storeEffects): the store calls it for every op, local or from the
// cluster log, on its writer goroutine, in commit order.
func (c *chatService) Committed(op storeOp) {
	if o, ok := op.(chatEffect); ok {
		o.committed(c)
	}
}
