extension Image {
  /// OpenCV's `cvtColor(…, COLOR_BGR2GRAY)` for 8-bit images, bit for bit:
  /// `(B × 3735 + G × 19235 + R × 9798 + 16384) >> 15`. A gray image is returned as is.
  public func grayscale() -> Image {
    guard channels == 3 else { return self }
    var gray = [UInt8](repeating: 0, count: width * height)
    pixels.withUnsafeBufferPointer { bgr in
      gray.withUnsafeMutableBufferPointer { out in
        for index in 0..<out.count {
          let b = UInt32(bgr[3 * index]), g = UInt32(bgr[3 * index + 1]), r = UInt32(bgr[3 * index + 2])
          out[index] = UInt8((b &* 3735 &+ g &* 19235 &+ r &* 9798 &+ 16384) >> 15)
        }
      }
    }
    return Image(width: width, height: height, channels: 1, pixels: gray)
  }

  /// OpenCV's `blur(…, (3, 3))` for 8-bit images: the mean of each 3×3 neighbourhood, rounded to
  /// nearest (ties to even), with OpenCV's default border (reflect-101: `gfedcb|abcdefgh|gfedcba`).
  public func boxBlurred() -> Image {
    func reflect(_ index: Int, _ count: Int) -> Int {
      count == 1 ? 0 : index < 0 ? -index : index >= count ? 2 * count - 2 - index : index
    }
    // Column sums of three rows, then row sums of three columns: 9 values a pixel.
    var out = [UInt8](repeating: 0, count: pixels.count)
    var columns = [Int](repeating: 0, count: width * channels)
    for y in 0..<height {
      let above = reflect(y - 1, height), below = reflect(y + 1, height)
      for index in 0..<(width * channels) {
        columns[index] = Int(pixels[above * width * channels + index]) + Int(pixels[y * width * channels + index])
          + Int(pixels[below * width * channels + index])
      }
      for x in 0..<width {
        let left = reflect(x - 1, width), right = reflect(x + 1, width)
        for c in 0..<channels {
          let sum = columns[left * channels + c] + columns[x * channels + c] + columns[right * channels + c]
          out[(y * width + x) * channels + c] = UInt8((Double(sum) * (1.0 / 9.0)).rounded(.toNearestOrEven))
        }
      }
    }
    return Image(width: width, height: height, channels: channels, pixels: out)
  }

  /// Mirrored left to right, as OpenCV's `flip(…, 1)`.
  public func mirrored() -> Image {
    var out = pixels
    let rowBytes = width * channels
    for y in 0..<height {
      let row = y * rowBytes
      for x in 0..<width {
        let from = row + (width - 1 - x) * channels, to = row + x * channels
        for c in 0..<channels { out[to + c] = pixels[from + c] }
      }
    }
    return Image(width: width, height: height, channels: channels, pixels: out)
  }

  /// Upside down, as OpenCV's `flip(…, 0)`.
  public func flippedVertically() -> Image {
    var out = [UInt8]()
    out.reserveCapacity(pixels.count)
    let rowBytes = width * channels
    for y in stride(from: height - 1, through: 0, by: -1) {
      out.append(contentsOf: pixels[y * rowBytes..<(y + 1) * rowBytes])
    }
    return Image(width: width, height: height, channels: channels, pixels: out)
  }

  /// Rows and columns swapped, as OpenCV's `transpose`.
  public func transposed() -> Image {
    var out = [UInt8](repeating: 0, count: pixels.count)
    for y in 0..<height {
      for x in 0..<width {
        let from = (y * width + x) * channels, to = (x * height + y) * channels
        for c in 0..<channels { out[to + c] = pixels[from + c] }
      }
    }
    return Image(width: height, height: width, channels: channels, pixels: out)
  }

  /// The image as a camera with EXIF `orientation` (1–8) meant it to be seen, the way
  /// OpenCV's `imdecode` applies it; any other value leaves it as is.
  public func applyingEXIFOrientation(_ orientation: Int) -> Image {
    switch orientation {
    case 2: mirrored()
    case 3: mirrored().flippedVertically()
    case 4: flippedVertically()
    case 5: transposed()
    case 6: transposed().mirrored()
    case 7: transposed().mirrored().flippedVertically()
    case 8: transposed().flippedVertically()
    default: self
    }
  }
}
