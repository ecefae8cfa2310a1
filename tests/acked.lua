-- wrk script for the graceful-restart test: every request carries a unique
-- page location, and each thread writes the locations answered 200 to
-- ACKED_DIR/<thread>.txt, one per line, as the answers arrive.
--
-- Run with as many connections as threads (-c N -t N): a thread then has
-- at most one request outstanding, so an answer is for the last request
-- sent, and a request sent again (after a broken connection) replaces an
-- unanswered one, which was not acknowledged.

local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end

function init(args)
    out = assert(io.open(os.getenv("ACKED_DIR") .. "/" .. id .. ".txt", "w"))
    out:setvbuf("line")
    sent = 0
end

function request()
    sent = sent + 1
    pending = "http://restart/" .. id .. "/" .. sent
    local q = "p=0:i1t84hgy:party" .. id .. "&s=0:i1t84hgy:session" .. id .. "&v=0:view" .. id
        .. "&e=0:view" .. id .. "x" .. sent .. "&c=is8wanhg&n=t&f=t&t=pageView&l="
        .. pending:gsub(":", "%%3A"):gsub("/", "%%2F")
    return wrk.format("GET", "/csc-event?" .. q)
end

function response(status, headers, body)
    if status == 200 and pending then
        out:write(pending, "\n")
    end
    pending = nil
end
