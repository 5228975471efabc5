-- Argo CD health for every glassbox.dev kind (resource.customizations "glassbox.dev/*").
-- The status follows kstatus (sigs.k8s.io/cli-utils, pkg/kstatus), so Flux needs no script; this
-- one reads the same fields, so both tools agree:
--   observedGeneration behind metadata.generation, or no status yet  -> Progressing
--   Stalled=True (terminal failure or invalid spec; reason says which) -> Degraded
--   Suspended=True (spec.suspend)                                      -> Suspended
--   Reconciling=True (children created, queued, rolling out, retrying) -> Progressing
--   Ready=True (running normally, finished, serving)                   -> Healthy
--   anything else                                                      -> Progressing
-- Argo CD runs it without Lua's string library: only base and table functions are used here.

local function condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function is_true(status, ctype)
  local c = condition(status, ctype)
  if c ~= nil and c.status == "True" then
    return c
  end
  return nil
end

-- The condition's message, else status.message, else the condition's reason.
local function message(status, c)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if status.message ~= nil and status.message ~= "" then
    return status.message
  end
  if c ~= nil and c.reason ~= nil then
    return c.reason
  end
  return ""
end

local hs = {}
local generation = obj.metadata.generation
local status = obj.status

if status == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end

local c = is_true(status, "Stalled")
if c ~= nil then
  hs.status = "Degraded"
  hs.message = message(status, c)
  return hs
end

c = is_true(status, "Suspended")
local ready = is_true(status, "Ready")
if c ~= nil or status.phase == "Suspended" or (ready ~= nil and ready.reason == "Suspended") then
  hs.status = "Suspended"
  hs.message = message(status, c or ready)
  return hs
end

c = is_true(status, "Reconciling")
if c ~= nil then
  hs.status = "Progressing"
  hs.message = message(status, c)
  return hs
end

if ready ~= nil then
  hs.status = "Healthy"
  hs.message = message(status, ready)
  return hs
end

hs.status = "Progressing"
hs.message = message(status, condition(status, "Ready"))
return hs
