// Package files owns uploaded files and pictures: their bytes, kept as
// blobs named by their SHA-256 under the data folder's files/ (the same
// content stored once), type sniffing, thumbnails of pictures, the upload
// limit and the per-account quota, downloads for those who may read the
// room, the sweep of uploads never sent and of blobs no row names, and the
// copy of the blobs a backup names.
//
// What it promises:
//   - An upload is streamed to disk, never held in memory. When Upload
//     returns, the bytes are on disk (fsynced), the row is committed, and
//     on a cluster node the bytes are in the replica; on any error nothing
//     is left behind.
//   - A blob is written once and never changed. It is removed only when no
//     row names it, and never while an upload is about to name it.
//   - A picture is decoded only after its declared size was checked
//     against what decoding and scaling it would cost at the peak
//     (decodeCost); at most two at once, one per user, within one shared
//     budget, turns going round the users (thumbqueue.go), so one user's
//     pictures never wait behind another's for longer than one decode.
//   - The bytes of a deleted file leave this node's disk, and the
//     object store, as the deletion is applied here (released.go), on
//     every node, not at the daily sweep.
//   - Disk floors (floors.go): uploads refused (507) past the uploads'
//     total cap or below -min-free, the store's growing ops below a
//     quarter of it; deleting never refused.
//   - A file one may not see is 404, like one that does not exist; a
//     thumbnail is reused only from the uploader's own earlier upload of
//     the same bytes, so an upload's time tells nothing of others' files.
//
// Interfaces it owns, which a higher package implements:
//   - Replica, the blobs on other nodes: implemented by cluster.ObjectBlobs.
//   - RoomAccess (unexported; CanPost, CanRead), the room rules: implemented
//     by chat's room gate (chat.NewRoomGate).
//
// It implements the chat service's attachment files (Service.Forget).
//
// Of stompbox it imports only internal/apperr and internal/store. It never
// imports the chat, the cluster or the web layer: the chat's rules and the
// cluster's object store reach it through the interfaces above
// (layout_test.go).
package files
