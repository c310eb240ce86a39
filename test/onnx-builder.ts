// Builds small ONNX models byte by byte (protobuf wire format), so tests need no Python and no downloaded model.
// Only what the tests use: float32 tensors, MatMul / Add / Relu nodes, one input and one output with a dynamic batch.

import { bytes, int, str } from '../bench/onnx-model.mjs';

function tensor(name: string, dims: number[], values: Float32Array): number[] {
  const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return [...dims.flatMap((d) => int(1, d)), ...int(2, 1 /* FLOAT */), ...str(8, name), ...bytes(9, [...raw])];
}

function valueInfo(name: string, dims: (number | string)[]): number[] {
  const dimensions = dims.flatMap((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  const tensorType = [...int(1, 1 /* FLOAT */), ...bytes(2, dimensions)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

function node(op: string, inputs: string[], outputs: string[]): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(3, `${op}_${outputs[0]}`), ...str(4, op)];
}

export interface Mlp {
  w1: Float32Array; // in × hidden
  b1: Float32Array;
  w2: Float32Array; // hidden × out
  b2: Float32Array;
  inputDim: number;
  hidden: number;
  outputDim: number;
}

/** y = relu(x W1 + b1) W2 + b2, BEBR's transform block shape (without batch norm), as an ONNX model (opset 13). */
export function mlpModel(m: Mlp): Uint8Array {
  const graph = [
    ...bytes(1, node('MatMul', ['x', 'W1'], ['h0'])),
    ...bytes(1, node('Add', ['h0', 'B1'], ['h1'])),
    ...bytes(1, node('Relu', ['h1'], ['h2'])),
    ...bytes(1, node('MatMul', ['h2', 'W2'], ['y0'])),
    ...bytes(1, node('Add', ['y0', 'B2'], ['y'])),
    ...str(2, 'mlp'),
    ...bytes(5, tensor('W1', [m.inputDim, m.hidden], m.w1)),
    ...bytes(5, tensor('B1', [m.hidden], m.b1)),
    ...bytes(5, tensor('W2', [m.hidden, m.outputDim], m.w2)),
    ...bytes(5, tensor('B2', [m.outputDim], m.b2)),
    ...bytes(11, valueInfo('x', ['batch', m.inputDim])),
    ...bytes(12, valueInfo('y', ['batch', m.outputDim])),
  ];
  const model = [...int(1, 8 /* IR version */), ...str(2, 'tessera-tests'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...int(2, 13)])];
  return Uint8Array.from(model);
}

/** The same MLP in float64, as the reference. */
export function mlpReference(m: Mlp, x: Float32Array): Float64Array {
  const rows = x.length / m.inputDim;
  const y = new Float64Array(rows * m.outputDim);
  const h = new Float64Array(m.hidden);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m.hidden; j++) {
      let s = m.b1[j]!;
      for (let i = 0; i < m.inputDim; i++) s += x[r * m.inputDim + i]! * m.w1[i * m.hidden + j]!;
      h[j] = Math.max(0, s);
    }
    for (let o = 0; o < m.outputDim; o++) {
      let s = m.b2[o]!;
      for (let j = 0; j < m.hidden; j++) s += h[j]! * m.w2[j * m.outputDim + o]!;
      y[r * m.outputDim + o] = s;
    }
  }
  return y;
}


export { rotaryEmbeddingModel, singleNodeModel } from '../bench/onnx-model.mjs';
