"""Exactly-once updates on real storage processes (§4.5): a retried update (same client, channel, seqnum)
returns the recorded result instead of being applied again, a stale retry is refused, forwarded duplicates
are idempotent, and the client keeps one channel and seqnum for all retries of an update."""
from __future__ import annotations

import asyncio
import os

import pytest
from crc32c import crc32c
from fault_util import CHUNK, Harness

from threefs.client.file_io import FileIO
from threefs.common import placement
from threefs.common.errors import Code, FSError
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import storage_pb2 as spb


async def _location(h: Harness, path: str) -> tuple[int, bytes]:
    c = h.observer.client
    st = await c.stat(path)
    return FileIO(st.inode, c.mgmtd, c.storage).chain_of(0), placement.chunk_id(st.inode.id, 0)


def test_retried_update_is_not_applied_twice(harness):
    h = harness
    h.write_file("/eo", os.urandom(CHUNK))
    client_id = os.urandom(16)

    async def body() -> None:
        chain, cid = await _location(h, "/eo")
        r = h.observer.client.mgmtd.routing
        head = r.head(chain)
        rpc = RpcClient()

        async def write(fill: bytes, channel: int, seqnum: int, *, target: int = head,
                        from_client: bool = True, update_ver: int = 0) -> spb.WriteRsp:
            data = fill * 4096
            req = spb.WriteReq(from_client=from_client,
                               tag=spb.UpdateTag(client_id=client_id, request_id=seqnum, channel_id=channel,
                                                 seqnum=seqnum),
                               io=spb.UpdateIO(chain_id=chain, chain_ver=r.chain(chain).chain_version, chunk_id=cid,
                                               offset=0, length=len(data), chunk_size=CHUNK, type=spb.WRITE,
                                               checksum=crc32c(data), update_ver=update_ver))
            rsp, _ = await rpc.call(r.target_address(target), "Storage.Write", req, spb.WriteRsp, payload=data,
                                    timeout=10)
            return rsp

        async def replicas() -> set[tuple[int, int, int]]:
            out = set()
            for t in r.chain(chain).targets:
                m = (await h.observer.client.storage.query_chunk(t.target_id, cid)).meta
                out.add((m.commit_ver, m.update_ver, m.checksum))
            return out

        try:
            base = (await h.observer.client.storage.query_chunk(head, cid)).meta.commit_ver
            first = await write(b"A", channel=7, seqnum=1)
            assert first.commit_ver == base + 1
            second = await write(b"B", channel=8, seqnum=1)            # another update in between
            assert second.commit_ver == base + 2
            replay = await write(b"A", channel=7, seqnum=1)            # the first one's reply was "lost"
            assert (replay.commit_ver, replay.checksum) == (first.commit_ver, first.checksum)
            state = await replicas()
            assert len(state) == 1 and next(iter(state))[0] == base + 2, "the retry must not be applied again"
            assert (await h.observer.client.read_file("/eo"))[:4096] == b"B" * 4096
            third = await write(b"C", channel=7, seqnum=2)             # the channel's next update
            assert third.commit_ver == base + 3
            with pytest.raises(FSError) as ei:                         # a stale retry arriving late
                await write(b"A", channel=7, seqnum=1)
            assert ei.value.code == Code.DUPLICATE_UPDATE
            # a forwarded duplicate of a committed version is an idempotent success on any replica
            for t in r.chain(chain).targets[1:]:
                dup = await write(b"C", channel=7, seqnum=2, target=t.target_id, from_client=False,
                                  update_ver=base + 3)
                assert dup.commit_ver == base + 3
            state = await replicas()
            assert len(state) == 1 and next(iter(state))[:2] == (base + 3, base + 3)
            assert (await h.observer.client.read_file("/eo"))[:4096] == b"C" * 4096
        finally:
            await rpc.close()

    h.observer.call(body())
    h.extra_files["/eo"] = b"C" * 4096 + h.extra_files["/eo"][4096:]
    h.verify_files()


def test_client_retries_reuse_channel_and_seqnum(harness):
    h = harness
    h.write_file("/eo-client", bytes(CHUNK))

    async def body() -> None:
        c = h.observer.client
        chain, cid = await _location(h, "/eo-client")
        sent: list[tuple[int, int, int, int]] = []
        orig = c.storage.rpc.call

        async def spy(address, method, request, *a, **kw):
            if method == "Storage.Write":
                sent.append((request.tag.channel_id, request.tag.seqnum, request.retry, request.io.chain_ver))
            return await orig(address, method, request, *a, **kw)

        c.storage.rpc.call = spy
        try:
            real = c.mgmtd.routing
            stale = cpb.RoutingInfo()
            stale.CopyFrom(real.info)
            stale.version = real.version - 1
            for ch in stale.chains:
                ch.chain_version += 1                                   # every first attempt is refused
            c.mgmtd.routing = Routing(stale)
            await c.storage.write_chunk(chain, cid, 0, b"x" * 1000, CHUNK)
            assert len(sent) >= 2, sent
            assert len({(ch, seq) for ch, seq, _, _ in sent}) == 1, "all attempts carry one channel and seqnum"
            assert [retry for _, _, retry, _ in sent] == list(range(len(sent)))
            assert sent[0][3] != sent[-1][3], "the retry went out with the refreshed chain version"
            sent.clear()
            await asyncio.gather(*(c.storage.write_chunk(chain, cid, 4096 * i, b"y" * 100, CHUNK) for i in range(8)))
            assert len({ch for ch, _, _, _ in sent}) == 8, "concurrent updates hold distinct channels"
            sent.clear()
            await c.storage.write_chunk(chain, cid, 0, b"z", CHUNK)
            (ch, seq, _, _), = sent
            assert seq >= 2, "every channel was used before: a reused channel continues its sequence"
        finally:
            c.storage.rpc.call = orig

    h.observer.call(body())
