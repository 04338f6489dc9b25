-- wrk script for bench/ocsp.sh: POST /ocsp with pre-made OCSP requests that
-- each carry a nonce (so every answer is signed on demand), cycling through
-- the files listed (one path a line) in the file named by OCSP_REQS.
local reqs = {}
local list = os.getenv("OCSP_REQS")

for path in io.lines(list) do
  local f = assert(io.open(path, "rb"))
  reqs[#reqs + 1] = f:read("*a")
  f:close()
end

local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("POST", "/ocsp", {["Content-Type"] = "application/ocsp-request"}, reqs[i])
end
