/*
 * fleet_proto.h - the control channel between the front end and a worker
 * process (fleet.h), and the shared-memory helpers both sides use.
 *
 * One SOCK_SEQPACKET socketpair per lane, so each message arrives whole or
 * not at all.  Messages are fixed-layout structs (both ends are the same
 * binary) sent up to their last used tensor descriptor.  Tensor data is never
 * in a message: a descriptor names an offset and a size in the lane's memfd.
 *
 *   worker -> front end, once, on lane 0 after loading: fl_ready
 *   front end -> worker: fl_request (inputs at offsets in the memfd)
 *   worker -> front end: fl_reply (outputs at offsets in the memfd, after
 *                        the inputs; the worker grows the memfd if needed)
 */
#ifndef HLOSERVE_SERVER_FLEET_PROTO_H
#define HLOSERVE_SERVER_FLEET_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "hloserve/tensor.h"
#include "server/repository.h"
#include "server/worker.h"

#define FL_MAGIC_READY 0x484c5231u   /* "HLR1" */
#define FL_MAGIC_REQUEST 0x484c5131u /* "HLQ1" */
#define FL_MAGIC_REPLY 0x484c4131u   /* "HLA1" */
#define FL_MAX_TENSORS 64
#define FL_ALIGN 64

typedef struct fl_tensor {
  int32_t dtype;
  int32_t index; /* request: the model's input index; reply: the model's output index */
  int32_t rank;
  int32_t pad;
  int64_t dims[HS_MAX_RANK];
  uint64_t offset, nbytes; /* in the lane's memfd */
} fl_tensor;

typedef struct fl_ready {
  uint32_t magic;
  int32_t ok;
  char message[1024];
} fl_ready;

/* Before fl_ready, one per model of the worker that did not load: the
 * front end (which only read the manifests) takes the reason at the first
 * start, before it serves. */
#define FL_MAGIC_NOT_READY 0x484c4e31u /* "HLN1" */
typedef struct fl_not_ready {
  uint32_t magic;
  char model[HS_MODEL_NAME_MAX + 1];
  char reason[1536];
} fl_not_ready;

typedef struct fl_request {
  uint32_t magic;
  int32_t num_inputs;
  int64_t deadline_ns; /* CLOCK_MONOTONIC, as hs_now_ns; INT64_MAX: none */
  uint64_t shm_size;   /* the memfd holds at least this many bytes */
  uint64_t inputs_end; /* outputs may go from here on */
  char model[HS_MODEL_NAME_MAX + 1];
  fl_tensor inputs[FL_MAX_TENSORS];
} fl_request;

typedef struct fl_reply {
  uint32_t magic;
  int32_t code; /* hs_status_code; 0: ok */
  int32_t num_outputs;
  int32_t pad;
  uint64_t shm_size;
  hs_run_timing timing;
  char message[1536];
  fl_tensor outputs[FL_MAX_TENSORS];
} fl_reply;

static inline uint64_t fl_align(uint64_t n) { return (n + FL_ALIGN - 1) & ~(uint64_t)(FL_ALIGN - 1); }

/* A lane's view of its memfd. */
typedef struct fl_map {
  int fd;
  unsigned char *data;
  size_t size;
} fl_map;

/* Makes the memfd at least `need` bytes (growing it when smaller; grow: the
 * file's new size rounds up) and the mapping cover the whole file. */
hs_status *fl_map_ensure(fl_map *m, size_t need, int grow);
void fl_map_unmap(fl_map *m);

/* Sends one whole message on a lane's channel.  Returns 0 or an errno. */
int fl_send(int fd, const void *msg, size_t len);
/* Bytes of tensor data inside a message of `len` bytes: whatever goes past
 * the fixed header and the descriptors of its `num` tensors.  The front end
 * adds it to hloserve_fleet_channel_tensor_bytes_total for every message it
 * sends or receives; the layouts leave no room for any, so it stays 0. */
size_t fl_request_payload(size_t len, int num);
size_t fl_reply_payload(size_t len, int num);

#endif
