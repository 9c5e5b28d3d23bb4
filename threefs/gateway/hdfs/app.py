"""The WebHDFS REST server: `/webhdfs/v1/<path>?op=...` over the threefs namespace (aiohttp).

The gateway plays both roles of a Hadoop cluster: CREATE and APPEND answer 307 with a Location back at
the gateway itself (`data=true`, as HttpFS does), which then takes the body. Bodies are streamed both
ways in `IO_BUFFER` pieces: uploads keep WRITE_DEPTH pieces in flight to storage while receiving more,
downloads read the next piece while sending one.
A CREATE writes a hidden sibling and renames it over the target when the body is complete, so a failed
upload loses nothing.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import posixpath
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from threefs.client.fs import AsyncClient, AsyncFile
from threefs.client.meta_client import MetaClient
from threefs.common.errors import Code, FSError
from threefs.gateway import sweep
from threefs.gateway.hdfs import status as fstat
from threefs.gateway.hdfs.errors import WebHdfsError, bad_arg, from_exception
from threefs.gateway.hdfs.identity import Identity, UserMap
from threefs.mgmtd.users import UsersClient
from threefs.proto import meta_pb2 as mp

log = logging.getLogger("hdfs")
PREFIX = "/webhdfs/v1"
IO_BUFFER = 4 << 20
WRITE_DEPTH = 4
LIST_BATCH = 1000
MARKERS = "/.webhdfs-uploads"    # one symlink per CREATE in progress, to its temporary (threefs.gateway.sweep)
RENAME_NOREPLACE = 1
XATTR_CREATE, XATTR_REPLACE = 1, 2
_PERM = re.compile(r"^[01]?[0-7]{1,3}$")
_XATTR_NAMESPACES = ("user.", "trusted.", "security.", "system.", "raw.")

Query = dict[str, list[str]]
Handler = Callable[["Request"], Awaitable[web.StreamResponse]]


class _UserClient(AsyncClient):
    """An AsyncClient acting as one mapped user, sharing the gateway client's connections and routing."""

    def __init__(self, base: AsyncClient, identity: Identity, token: str) -> None:
        self.mgmtd = base.mgmtd
        self.rpc = base.rpc
        self.storage = base.storage
        self.meta = MetaClient(self.mgmtd, self.rpc, identity.user_info(token), client_id=self.storage.client_id,
                               retry_timeout=base.meta.retry_timeout)
        self._init_write_sessions()

    async def connect(self) -> AsyncClient:
        return self

    async def close(self) -> None:
        await self._end_writers()


class Request:
    """One parsed WebHDFS request: path, lower-cased parameters, identity and the client acting for it."""

    def __init__(self, http: web.Request, path: str, query: Query, who: Identity, client: AsyncClient) -> None:
        self.http = http
        self.path = path
        self.query = query
        self.who = who
        self.client = client

    def get(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def boolean(self, name: str, default: bool) -> bool:
        v = self.get(name)
        if v is None or v == "":
            return default
        if v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise bad_arg(f'Invalid value for webhdfs parameter "{name}": Failed to parse "{v}" to Boolean.')

    def integer(self, name: str, default: int | None, minimum: int | None = None) -> int | None:
        v = self.get(name)
        if v is None or v == "":
            return default
        try:
            n = int(v)
        except ValueError:
            raise bad_arg(f'Invalid value for webhdfs parameter "{name}": Failed to parse "{v}" as a number.') \
                from None
        if minimum is not None and n < minimum:
            raise bad_arg(f'Invalid value for webhdfs parameter "{name}": {n} < {minimum}')
        return n

    def permission(self, default: int) -> int:
        v = self.get("permission")
        if v is None or v == "":
            return default
        if not _PERM.match(v):
            raise bad_arg(f'Invalid value for webhdfs parameter "permission": Invalid value: "{v}" does not '
                          f'belong to the domain {_PERM.pattern}')
        return int(v, 8)

    def required(self, name: str) -> str:
        v = self.get(name)
        if v is None or v == "":
            raise bad_arg(f'Required parameter "{name}" is missing')
        return v


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def normalize(path: str) -> str:
    """An absolute, normalized threefs path; IllegalArgumentException for '.' or '..' components."""
    path = "/" + path.lstrip("/")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise bad_arg(f"Invalid path name {path}")
    return "/" + "/".join(parts)


class WebHdfsGateway:
    """The gateway service: an aiohttp app, a shared threefs client and the user map."""

    def __init__(self, mgmtd: str, *, token: str = "", default_user: str | None = None,
                 require_token: bool = False, users_ttl: float = 10.0, list_limit: int = LIST_BATCH,
                 sweep_interval: float = sweep.SWEEP_INTERVAL, stale_after: float = sweep.STALE_AFTER) -> None:
        self.mgmtd_address = mgmtd
        self.stale_after = stale_after
        self.sweeper = sweep.Sweeper(self.sweep_temporaries, sweep_interval)
        self.list_limit = max(1, list_limit)
        self.token = token
        self.users_client = UsersClient(mgmtd)
        self.users = UserMap(self.users_client, admin_token=token, default_user=default_user,
                             require_token=require_token, ttl=users_ttl)
        self.base: AsyncClient | None = None
        self._clients: dict[Identity, _UserClient] = {}
        self._runner: web.AppRunner | None = None
        self.address = ""
        self.ops: dict[tuple[str, str], Handler] = {
            ("GET", "OPEN"): self.op_open,
            ("GET", "GETFILESTATUS"): self.op_getfilestatus,
            ("GET", "LISTSTATUS"): self.op_liststatus,
            ("GET", "LISTSTATUS_BATCH"): self.op_liststatus_batch,
            ("GET", "GETCONTENTSUMMARY"): self.op_getcontentsummary,
            ("GET", "GETFILECHECKSUM"): self.op_getfilechecksum,
            ("GET", "GETHOMEDIRECTORY"): self.op_gethomedirectory,
            ("GET", "GETXATTRS"): self.op_getxattrs,
            ("GET", "LISTXATTRS"): self.op_listxattrs,
            ("GET", "GETDELEGATIONTOKEN"): self.op_getdelegationtoken,
            ("PUT", "CREATE"): self.op_create,
            ("PUT", "MKDIRS"): self.op_mkdirs,
            ("PUT", "CREATESYMLINK"): self.op_createsymlink,
            ("PUT", "RENAME"): self.op_rename,
            ("PUT", "SETPERMISSION"): self.op_setpermission,
            ("PUT", "SETOWNER"): self.op_setowner,
            ("PUT", "SETREPLICATION"): self.op_setreplication,
            ("PUT", "SETTIMES"): self.op_settimes,
            ("PUT", "SETXATTR"): self.op_setxattr,
            ("PUT", "REMOVEXATTR"): self.op_removexattr,
            ("POST", "APPEND"): self.op_append,
            ("POST", "CONCAT"): self.op_concat,
            ("POST", "TRUNCATE"): self.op_truncate,
            ("DELETE", "DELETE"): self.op_delete,
        }

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Connect to the cluster and listen; returns HOST:PORT."""
        self.base = await AsyncClient(self.mgmtd_address, retry_timeout=30.0).connect()
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", PREFIX + "{path:(/.*)?}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]   # the bound port when port=0
        self.address = f"{host}:{sock.getsockname()[1]}"
        log.info("WebHDFS gateway on http://%s%s", self.address, PREFIX)
        self.sweeper.start()
        return self.address

    async def sweep_temporaries(self) -> int:
        """Remove the stale temporaries of CREATEs whose gateway died (threefs.gateway.sweep), found through
        their markers; a marker whose temporary is gone (renamed into place) goes too."""
        assert self.base is not None
        c, n = self.base, 0
        for name in await sweep.listdir_or_empty(c, MARKERS):
            marker = f"{MARKERS}/{name}"
            try:
                tmp = await c.readlink(marker)
                await c.lstat(tmp)
            except FileNotFoundError:
                done = True
            else:
                done = await sweep.remove_if_stale(c, tmp, self.stale_after)
                n += done
            if done:
                await self._unmark(marker)
        return n

    async def _mark(self, tmp: str) -> str:
        """A marker of an upload in progress: a symlink to its temporary, for the sweep of a dead gateway's."""
        assert self.base is not None
        marker = f"{MARKERS}/{os.urandom(8).hex()}"
        try:
            await self.base.symlink(tmp, marker)
        except FileNotFoundError:
            await self.base.mkdir(MARKERS, 0o700, exist_ok=True)
            await self.base.symlink(tmp, marker)
        return marker

    async def _unmark(self, marker: str) -> None:
        assert self.base is not None
        try:
            await self.base.remove(marker)
        except FSError as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("could not remove the upload marker %s: %s", marker, e)

    async def stop(self) -> None:
        await self.sweeper.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        for c in self._clients.values():
            await c.close()
        if self.base is not None:
            await self.base.close()
        await self.users_client.close()

    def client_for(self, who: Identity) -> AsyncClient:
        c = self._clients.get(who)
        if c is None:
            assert self.base is not None
            c = self._clients[who] = _UserClient(self.base, who, self.token)
        return c

    # ---- dispatch ----------------------------------------------------------------------
    async def handle(self, http: web.Request) -> web.StreamResponse:
        try:
            query: Query = {}
            for k, v in http.query.items():
                query.setdefault(k.lower(), []).append(v)
            op = (query.get("op") or [""])[-1].upper()
            if not op:
                raise bad_arg('Required parameter "op" is missing')
            handler = self.ops.get((http.method, op))
            if handler is None:
                known = any(o == op for _, o in self.ops)
                detail = f"{op} is not a valid {http.method} operation" if known else f"No enum constant {op}"
                raise bad_arg(f'Invalid value for webhdfs parameter "op": {detail}')
            raw = urllib.parse.unquote(http.raw_path.split("?", 1)[0])
            path = normalize(raw[len(PREFIX):] if raw.startswith(PREFIX) else http.match_info.get("path") or "/")
            user_name = (query.get("doas") or query.get("user.name") or [None])[-1]
            who = await self.users.resolve(user_name, (query.get("delegation") or [None])[-1])
            try:
                return await handler(Request(http, path, query, who, self.client_for(who)))
            except FSError as e:
                if e.code in (Code.PERMISSION_DENIED, Code.NOT_PERMITTED):
                    raise WebHdfsError(e.code, f"Permission denied: user={who.name}, path={path}: {e.strerror}") \
                        from None
                raise
        except (WebHdfsError, FSError) as e:
            return from_exception(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:   # an unexpected failure still answers as a RemoteException
            log.exception("%s %s failed", http.method, http.path_qs)
            return from_exception(e)

    def redirect(self, r: Request) -> web.Response:
        """307 back at this gateway with data=true (or the Location as JSON with noredirect=true)."""
        url = str(r.http.url.update_query({"data": "true"}))
        if r.boolean("noredirect", False):
            return json_response({"Location": url})
        return web.Response(status=307, headers={"Location": url, "Content-Length": "0"})

    # ---- reads ---------------------------------------------------------------------------
    async def op_open(self, r: Request) -> web.StreamResponse:
        offset = r.integer("offset", 0, 0)
        length = r.integer("length", None, 0)
        r.integer("buffersize", None, 1)
        f = await r.client.open_flags(r.path, os.O_RDONLY)
        try:
            if offset > f.length:
                raise bad_arg(f"Offset={offset} out of the range [0, {f.length}]")
            end = f.length if length is None else min(f.length, offset + length)
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
            resp.content_length = end - offset
            await resp.prepare(r.http)
            pos = offset
            nxt = asyncio.ensure_future(f.pread(min(IO_BUFFER, end - pos), pos)) if pos < end else None
            try:
                while nxt is not None:
                    data = await nxt
                    if not data:
                        raise FSError(Code.IO_ERROR, f"{r.path}: short read at {pos}")
                    pos += len(data)
                    nxt = asyncio.ensure_future(f.pread(min(IO_BUFFER, end - pos), pos)) if pos < end else None
                    await resp.write(data)
            except (FSError, OSError) as e:
                # the status line is sent: cut the connection so the client sees a short body, not bad data
                log.warning("OPEN %s failed at offset %d: %s", r.path, pos, e)
                if r.http.transport is not None:
                    r.http.transport.close()
                return resp
            finally:
                if nxt is not None and not nxt.done():
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
            await resp.write_eof()
            return resp
        finally:
            await f.close()

    async def _status(self, r: Request, inode: mp.Inode, suffix: str, path: str) -> dict[str, Any]:
        children = await self._count_children(r, path) if inode.type == mp.DIRECTORY else 0
        return fstat.file_status(inode, suffix, self.users, r.client.mgmtd.routing, children)

    async def _count_children(self, r: Request, path: str) -> int:
        n, prev = 0, ""
        while True:
            page = await r.client.list_page(path, prev, 4096)
            n += len(page.entries)
            if not page.more or not page.entries:
                return n
            prev = page.entries[-1].name

    async def op_getfilestatus(self, r: Request) -> web.StreamResponse:
        st = await r.client.lstat(r.path)
        await self.users._refresh()
        return json_response({"FileStatus": await self._status(r, st.inode, "", r.path)})

    async def _list(self, r: Request, prev: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        st = await r.client.lstat(r.path)
        await self.users._refresh()
        if st.inode.type != mp.DIRECTORY:
            return [await self._status(r, st.inode, "", r.path)], False
        page = await r.client.list_page(r.path, prev, limit, with_inodes=True)
        sem = asyncio.Semaphore(16)

        async def one(entry: mp.DirEntry, inode: mp.Inode) -> dict[str, Any]:
            async with sem:
                return await self._status(r, inode, entry.name, posixpath.join(r.path, entry.name))

        statuses = await asyncio.gather(*(one(e, i) for e, i in zip(page.entries, page.inodes)))
        return list(statuses), bool(page.more and page.entries)

    async def op_liststatus(self, r: Request) -> web.StreamResponse:
        out: list[dict[str, Any]] = []
        prev = ""
        while True:
            statuses, more = await self._list(r, prev, self.list_limit)
            out.extend(statuses)
            if not more:
                return json_response({"FileStatuses": {"FileStatus": out}})
            prev = statuses[-1]["pathSuffix"]

    async def op_liststatus_batch(self, r: Request) -> web.StreamResponse:
        """One page after `startAfter`; remainingEntries is a lower bound (non-zero iff more entries follow)."""
        statuses, more = await self._list(r, r.get("startafter") or "", self.list_limit)
        return json_response({"DirectoryListing": {"partialListing": {"FileStatuses": {"FileStatus": statuses}},
                                                   "remainingEntries": 1 if more else 0}})

    async def op_getcontentsummary(self, r: Request) -> web.StreamResponse:
        st = await r.client.lstat(r.path)
        routing = r.client.mgmtd.routing
        dirs = files = length = consumed = 0
        stack: list[mp.Inode | str] = [st.inode if st.inode.type != mp.DIRECTORY else r.path]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                dirs += 1
                for entry, inode in await r.client.scandir(item, with_inodes=True):
                    if entry.type == mp.DIRECTORY:
                        stack.append(posixpath.join(item, entry.name))
                    elif inode is not None:
                        stack.append(inode)
                continue
            files += 1
            if item.type == mp.FILE:
                length += item.length
                consumed += item.length * fstat.replication(item, routing)
        return json_response({"ContentSummary": {"directoryCount": dirs, "ecPolicy": "", "fileCount": files,
                                                 "length": length, "quota": -1, "spaceConsumed": consumed,
                                                 "spaceQuota": -1, "typeQuota": {}}})

    async def op_getfilechecksum(self, r: Request) -> web.StreamResponse:
        f = await r.client.open_flags(r.path, os.O_RDONLY)
        try:
            summer = fstat.Checksum(f.inode.layout.chunk_size or (1 << 20))
            pos = 0
            while pos < f.length:
                data = await f.pread(IO_BUFFER, pos)
                if not data:
                    raise FSError(Code.IO_ERROR, f"{r.path}: short read at {pos}")
                summer.update(data)
                pos += len(data)
        finally:
            await f.close()
        return json_response({"FileChecksum": summer.result()})

    async def op_gethomedirectory(self, r: Request) -> web.StreamResponse:
        return json_response({"Path": f"/user/{r.who.name}"})

    async def op_getdelegationtoken(self, r: Request) -> web.StreamResponse:
        token = r.get("delegation")
        if not token:
            raise WebHdfsError(Code.NOT_SUPPORTED, "delegation tokens are threefs user tokens: "
                                                   "authenticate with delegation=<token> to get one echoed")
        return json_response({"Token": {"urlString": token}})

    # ---- writes --------------------------------------------------------------------------
    async def _receive(self, r: Request, f: AsyncFile, offset: int) -> int:
        """Stream the request body into `f` at `offset` (WRITE_DEPTH buffers in flight); returns the bytes written."""
        pending: set[asyncio.Future] = set()
        buf = bytearray()
        pos = offset
        try:
            async for piece in r.http.content.iter_any():
                buf += piece
                if len(buf) >= IO_BUFFER:
                    if len(pending) >= WRITE_DEPTH:
                        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                        for d in done:
                            d.result()
                    pending.add(asyncio.ensure_future(f.pwrite(buf, pos)))
                    pos += len(buf)
                    buf = bytearray()
            if buf:
                pending.add(asyncio.ensure_future(f.pwrite(buf, pos)))
                pos += len(buf)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    d.result()
        finally:
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return pos - offset

    async def op_create(self, r: Request) -> web.StreamResponse:
        overwrite = r.boolean("overwrite", False)
        perm = r.permission(0o644)
        for name in ("blocksize", "buffersize"):
            r.integer(name, None, 1)
        r.integer("replication", None, 1)
        if r.path == "/":
            raise WebHdfsError(Code.EXISTS, "/ already exists as a directory")
        try:
            st = await r.client.lstat(r.path)
        except FileNotFoundError:
            st = None
        if st is not None and st.inode.type == mp.DIRECTORY:
            raise WebHdfsError(Code.EXISTS, f"{r.path} already exists as a directory")
        if st is not None and not overwrite:
            raise WebHdfsError(Code.EXISTS, f"{r.path} for client {r.http.remote} already exists")
        if not r.boolean("data", False):
            await self._check_writable_parent(r)
            return self.redirect(r)
        parent, name = posixpath.split(r.path)
        await r.client.mkdir(parent, 0o755, parents=True, exist_ok=True)
        tmp = posixpath.join(parent, f".{name}.{os.urandom(6).hex()}.webhdfs-upload")
        f = await r.client.open_flags(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm=perm)
        marker, settled = None, False        # settled: the temporary was renamed into place or removed
        try:
            try:
                marker = await self._mark(tmp)
                await self._receive(r, f, 0)
            finally:
                await f.close()
            await r.client.rename(tmp, r.path, flags=0 if overwrite else RENAME_NOREPLACE)
            settled = True
        except BaseException:
            try:
                await asyncio.shield(r.client.remove(tmp))
                settled = True
            except (FSError, asyncio.CancelledError):
                pass                          # the marker stays: a later sweep removes the temporary
            raise
        finally:
            if marker is not None and settled:
                try:
                    await asyncio.shield(self._unmark(marker))
                except asyncio.CancelledError:
                    pass
        location = f"hdfs://{r.http.host}{r.path}"
        return web.Response(status=201, headers={"Location": location, "Content-Length": "0"})

    async def _check_writable_parent(self, r: Request) -> None:
        """Refuse a CREATE before its redirect when the nearest existing ancestor is not writable for the caller."""
        parent = posixpath.dirname(r.path)
        while True:
            try:
                st = await r.client.stat(parent)
                break
            except FileNotFoundError:
                parent = posixpath.dirname(parent)
        if st.inode.type == mp.DIRECTORY and not await r.client.access(parent, os.W_OK | os.X_OK):
            raise WebHdfsError(Code.PERMISSION_DENIED, f"Permission denied: user={r.who.name}, access=WRITE, "
                                                       f"inode={parent}")

    async def op_append(self, r: Request) -> web.StreamResponse:
        r.integer("buffersize", None, 1)
        st = await r.client.stat(r.path)
        if st.inode.type != mp.FILE:
            raise WebHdfsError(Code.NOT_FOUND, f"failed to append to non-existent file {r.path}")
        if not r.boolean("data", False):
            if not await r.client.access(r.path, os.W_OK):
                raise WebHdfsError(Code.PERMISSION_DENIED, f"Permission denied: user={r.who.name}, access=WRITE, "
                                                           f"path={r.path}")
            return self.redirect(r)
        f = await r.client.open_flags(r.path, os.O_WRONLY)
        try:
            await self._receive(r, f, f.length)
        finally:
            await f.close()
        return web.Response(status=200, headers={"Content-Length": "0"})

    async def op_mkdirs(self, r: Request) -> web.StreamResponse:
        await r.client.mkdir(r.path, r.permission(0o755), parents=True, exist_ok=True)
        return json_response({"boolean": True})

    async def op_createsymlink(self, r: Request) -> web.StreamResponse:
        target = r.required("destination")
        if r.boolean("createparent", True):
            await r.client.mkdir(posixpath.dirname(r.path), 0o755, parents=True, exist_ok=True)
        await r.client.symlink(target, r.path)
        return web.Response(status=200)

    async def op_rename(self, r: Request) -> web.StreamResponse:
        dst = r.required("destination")
        if not dst.startswith("/"):
            raise bad_arg(f"Invalid value for webhdfs parameter \"destination\": {dst} is not absolute")
        dst = normalize(dst)
        if r.path == "/" or dst == r.path:
            return json_response({"boolean": dst == r.path and r.path != "/"})
        try:
            await r.client.lstat(r.path)
        except FileNotFoundError:
            return json_response({"boolean": False})
        try:
            st = await r.client.stat(dst)
        except FileNotFoundError:
            st = None
        if st is not None:
            if st.inode.type != mp.DIRECTORY:
                return json_response({"boolean": False})
            dst = posixpath.join(dst, posixpath.basename(r.path))
        try:
            await r.client.rename(r.path, dst, flags=RENAME_NOREPLACE)
        except (FileExistsError, FileNotFoundError):
            return json_response({"boolean": False})
        return json_response({"boolean": True})

    async def op_delete(self, r: Request) -> web.StreamResponse:
        recursive = r.boolean("recursive", False)
        if r.path == "/":
            return json_response({"boolean": False})
        try:
            st = await r.client.lstat(r.path)
        except FileNotFoundError:
            return json_response({"boolean": False})
        if st.inode.type != mp.DIRECTORY:
            await r.client.remove(r.path)
        elif recursive:
            await r.client.rmtree(r.path)
        else:
            try:
                await r.client.rmdir(r.path)
            except FSError as e:
                if e.code == Code.NOT_EMPTY:
                    raise WebHdfsError(Code.NOT_EMPTY, f"`{r.path} is non empty': Directory is not empty") \
                        from None
                raise
        return json_response({"boolean": True})

    async def op_setpermission(self, r: Request) -> web.StreamResponse:
        await r.client.chmod(r.path, r.permission(0o755))
        return web.Response(status=200)

    async def op_setowner(self, r: Request) -> web.StreamResponse:
        owner, group = r.get("owner"), r.get("group")
        if not owner and not group:
            raise bad_arg("Both owner and group are empty.")
        uid = await self.users.uid_of(owner) if owner else -1
        gid = await self.users.gid_of(group) if group else -1
        await r.client.chown(r.path, uid, gid)
        return web.Response(status=200)

    async def op_setreplication(self, r: Request) -> web.StreamResponse:
        """Accepted and ignored: replication is the file's chain length (the answer says whether it is a file)."""
        r.integer("replication", None, 1)
        st = await r.client.stat(r.path)
        return json_response({"boolean": st.inode.type == mp.FILE})

    async def op_settimes(self, r: Request) -> web.StreamResponse:
        mtime = r.integer("modificationtime", -1, -1)
        atime = r.integer("accesstime", -1, -1)
        fields = {k: v * 1_000_000 for k, v in (("atime_ns", atime), ("mtime_ns", mtime)) if v != -1}
        if fields:
            await r.client.setattr(r.path, **fields)
        else:
            await r.client.stat(r.path)
        return web.Response(status=200)

    async def op_truncate(self, r: Request) -> web.StreamResponse:
        new_length = r.integer("newlength", None, 0)
        if new_length is None:
            raise bad_arg('Required parameter "newlength" is missing')
        st = await r.client.stat(r.path)
        if st.inode.type != mp.FILE:
            raise WebHdfsError(Code.NOT_FOUND, f"{r.path} is not a file")
        if new_length > st.st_size:
            raise WebHdfsError(Code.OUT_OF_RANGE, f"Cannot truncate to a larger file size. Current size: "
                                                  f"{st.st_size}, truncate size: {new_length}.")
        await r.client.truncate(r.path, new_length)
        return json_response({"boolean": True})

    async def op_concat(self, r: Request) -> web.StreamResponse:
        """Concatenate without copying: empty sources are removed; a non-empty one needs a data copy and is refused."""
        sources = [normalize(s) for s in r.required("sources").split(",") if s]
        if not sources:
            raise bad_arg("ConcatOp: no sources given")
        if len(set(sources)) != len(sources) or r.path in sources:
            raise bad_arg("ConcatOp: sources must be distinct and differ from the target")
        st = await r.client.stat(r.path)
        if st.inode.type != mp.FILE:
            raise WebHdfsError(Code.NOT_FOUND, f"{r.path} is not a file")
        for s in sources:
            src = await r.client.lstat(s)
            if src.inode.type != mp.FILE:
                raise bad_arg(f"ConcatOp: source {s} is not a file")
            if src.st_size:
                raise WebHdfsError(Code.NOT_SUPPORTED, f"ConcatOp: {s} holds data; threefs cannot move chunks "
                                                       "between files, and CONCAT does not copy")
        for s in sources:
            await r.client.remove(s)
        return web.Response(status=200)

    # ---- extended attributes --------------------------------------------------------------
    @staticmethod
    def _xattr_name(name: str) -> str:
        if not name.startswith(_XATTR_NAMESPACES) or name.split(".", 1)[1] == "":
            raise bad_arg(f"An XAttr name must be prefixed with user/trusted/security/system/raw, followed by "
                          f"a '.': {name!r}")
        if not name.startswith("user."):
            raise WebHdfsError(Code.NOT_SUPPORTED, f"only user.* extended attributes are supported: {name!r}")
        return name

    @staticmethod
    def _encode(value: bytes, encoding: str) -> str:
        if encoding == "HEX":
            return "0x" + value.hex()
        if encoding == "BASE64":
            return "0s" + base64.b64encode(value).decode()
        return '"' + value.decode("utf-8", "replace") + '"'

    @staticmethod
    def _decode(text: str) -> bytes:
        try:
            if text[:2].lower() == "0x":
                return bytes.fromhex(text[2:])
            if text[:2].lower() == "0s":
                return base64.b64decode(text[2:], validate=True)
        except (ValueError, binascii.Error):
            raise bad_arg(f"Invalid value for webhdfs parameter \"xattr.value\": {text!r}") from None
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        return text.encode()

    async def op_getxattrs(self, r: Request) -> web.StreamResponse:
        encoding = (r.get("encoding") or "TEXT").upper()
        if encoding not in ("TEXT", "HEX", "BASE64"):
            raise bad_arg(f'Invalid value for webhdfs parameter "encoding": {encoding}')
        names = [self._xattr_name(n) for n in r.query.get("xattr.name", [])]
        if not names:
            names = await r.client.listxattr(r.path)
        out = []
        for name in names:
            try:
                value = await r.client.getxattr(r.path, name)
            except FSError as e:
                if e.code == Code.NO_DATA:
                    raise WebHdfsError(Code.NO_DATA, "At least one of the attributes provided was not found.") \
                        from None
                raise
            out.append({"name": name, "value": self._encode(value, encoding)})
        return json_response({"XAttrs": out})

    async def op_listxattrs(self, r: Request) -> web.StreamResponse:
        return json_response({"XAttrNames": json.dumps(await r.client.listxattr(r.path))})

    async def op_setxattr(self, r: Request) -> web.StreamResponse:
        name = self._xattr_name(r.required("xattr.name"))
        value = self._decode(r.get("xattr.value") or "")
        flag = {f.strip().upper() for f in r.required("flag").split(",") if f.strip()}
        if not flag or flag - {"CREATE", "REPLACE"}:
            raise bad_arg(f'Invalid value for webhdfs parameter "flag": {r.get("flag")}')
        flags = 0 if flag == {"CREATE", "REPLACE"} else XATTR_CREATE if "CREATE" in flag else XATTR_REPLACE
        await r.client.setxattr(r.path, name, value, flags)
        return web.Response(status=200)

    async def op_removexattr(self, r: Request) -> web.StreamResponse:
        await r.client.removexattr(r.path, self._xattr_name(r.required("xattr.name")))
        return web.Response(status=200)
