-- The built-in profiles. Their ladders must equal ladder.Builtins() in pkg/ladder;
-- a test in services/internal/store compares them. The API refuses to modify or
-- delete rows with builtin = true.

-- +goose Up
INSERT INTO profiles (id, name, description, builtin, ladder) VALUES
('00000000-0000-7000-8000-000000000001', '1080p', '1080p source: 4 renditions, 1080p to 360p', true,
 '{"renditions":[{"name":"1080p","width":1920,"height":1080,"video_bitrate_kbps":5000,"max_bitrate_kbps":7500,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2},{"name":"720p","width":1280,"height":720,"video_bitrate_kbps":2800,"max_bitrate_kbps":4200,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2},{"name":"480p","width":854,"height":480,"video_bitrate_kbps":1400,"max_bitrate_kbps":2100,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2},{"name":"360p","width":640,"height":360,"video_bitrate_kbps":800,"max_bitrate_kbps":1200,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2}],"audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"sample_rate":48000}}'),
('00000000-0000-7000-8000-000000000002', '720p', '720p source: 3 renditions, 720p to 360p', true,
 '{"renditions":[{"name":"720p","width":1280,"height":720,"video_bitrate_kbps":2800,"max_bitrate_kbps":4200,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2},{"name":"480p","width":854,"height":480,"video_bitrate_kbps":1400,"max_bitrate_kbps":2100,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2},{"name":"360p","width":640,"height":360,"video_bitrate_kbps":800,"max_bitrate_kbps":1200,"frame_rate":30,"codec":"h264","preset":"veryfast","keyframe_interval":2}],"audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"sample_rate":48000}}'),
('00000000-0000-7000-8000-000000000003', 'passthrough', 'One rendition at the source''s size and frame rate', true,
 '{"renditions":[{"name":"source","width":0,"height":0,"video_bitrate_kbps":4500,"max_bitrate_kbps":6750,"frame_rate":0,"codec":"h264","preset":"veryfast","keyframe_interval":2}],"audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"sample_rate":48000}}');

-- +goose Down
DELETE FROM profiles WHERE builtin;
