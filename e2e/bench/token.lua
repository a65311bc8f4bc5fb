-- wrk script for the rows that need a new bearer token per request (`-- PREFIX`), so that
-- no cache and no shared in-flight introspection can answer for another request. Each
-- thread numbers its own tokens. Rows with one token pass it with -H and need no script.
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local prefix, n = "", 0

function init(args)
  prefix = args[1]
end

function request()
  n = n + 1
  wrk.headers["Authorization"] = "Bearer " .. prefix .. "-" .. id .. "-" .. n
  return wrk.format()
end
