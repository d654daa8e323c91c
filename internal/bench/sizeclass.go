package bench

// SizeClass is one small object size class of the Go runtime's allocator.
// A span of the class holds Objects objects, and each of its mark and
// allocation bitmaps has that many bits.
type SizeClass struct {
	Class     int // size class number, from 1
	Size      int // bytes per object
	SpanBytes int // bytes per span
	Objects   int // objects per span: bits per bitmap
}

// BitmapBytes is what one bitmap of the class takes: whole 64-bit words.
func (c SizeClass) BitmapBytes() int { return (c.Objects + 63) / 64 * 8 }

// SizeClasses is Go 1.26's table of small size classes (class, bytes/obj,
// bytes/span, objects), copied by hand from
// src/internal/runtime/gc/sizeclasses.go. It is data, not parsed at run
// time, so the benchmark's request mix stays fixed when Go changes.
var SizeClasses = []SizeClass{
	{1, 8, 8192, 1024},
	{2, 16, 8192, 512},
	{3, 24, 8192, 341},
	{4, 32, 8192, 256},
	{5, 48, 8192, 170},
	{6, 64, 8192, 128},
	{7, 80, 8192, 102},
	{8, 96, 8192, 85},
	{9, 112, 8192, 73},
	{10, 128, 8192, 64},
	{11, 144, 8192, 56},
	{12, 160, 8192, 51},
	{13, 176, 8192, 46},
	{14, 192, 8192, 42},
	{15, 208, 8192, 39},
	{16, 224, 8192, 36},
	{17, 240, 8192, 34},
	{18, 256, 8192, 32},
	{19, 288, 8192, 28},
	{20, 320, 8192, 25},
	{21, 352, 8192, 23},
	{22, 384, 8192, 21},
	{23, 416, 8192, 19},
	{24, 448, 8192, 18},
	{25, 480, 8192, 17},
	{26, 512, 8192, 16},
	{27, 576, 8192, 14},
	{28, 640, 8192, 12},
	{29, 704, 8192, 11},
	{30, 768, 8192, 10},
	{31, 896, 8192, 9},
	{32, 1024, 8192, 8},
	{33, 1152, 8192, 7},
	{34, 1280, 8192, 6},
	{35, 1408, 16384, 11},
	{36, 1536, 8192, 5},
	{37, 1792, 16384, 9},
	{38, 2048, 8192, 4},
	{39, 2304, 16384, 7},
	{40, 2688, 8192, 3},
	{41, 3072, 24576, 8},
	{42, 3200, 16384, 5},
	{43, 3456, 24576, 7},
	{44, 4096, 8192, 2},
	{45, 4864, 24576, 5},
	{46, 5376, 16384, 3},
	{47, 6144, 24576, 4},
	{48, 6528, 32768, 5},
	{49, 6784, 40960, 6},
	{50, 6912, 49152, 7},
	{51, 8192, 8192, 1},
	{52, 9472, 57344, 6},
	{53, 9728, 49152, 5},
	{54, 10240, 40960, 4},
	{55, 10880, 32768, 3},
	{56, 12288, 24576, 2},
	{57, 13568, 40960, 3},
	{58, 14336, 57344, 4},
	{59, 16384, 16384, 1},
	{60, 18432, 73728, 4},
	{61, 19072, 57344, 3},
	{62, 20480, 40960, 2},
	{63, 21760, 65536, 3},
	{64, 24576, 24576, 1},
	{65, 27264, 81920, 3},
	{66, 28672, 57344, 2},
	{67, 32768, 32768, 1},
}

// Mix returns the request sizes of the benchmark, in bits: one request per
// small size class, for the bitmap of one span of that class, in class
// order. Workers cycle through it.
func Mix() []int {
	m := make([]int, len(SizeClasses))
	for i, c := range SizeClasses {
		m[i] = c.Objects
	}
	return m
}

// mixBytes is the average bitmap size of the mix, in bytes.
func mixBytes() float64 {
	n := 0
	for _, c := range SizeClasses {
		n += c.BitmapBytes()
	}
	return float64(n) / float64(len(SizeClasses))
}
