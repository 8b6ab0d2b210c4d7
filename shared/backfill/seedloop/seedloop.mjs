// The seed's "Write Missing Data" loop, for comparison in BenchmarkLocalAPIFanOut: the same shape as the original
// browser code (one device after another, one reused Point, a write API with 2,000-point batches flushed every 2,000
// points, millisecond precision, clientId as a default tag), run in Node with the npm client the seed names.
//
// usage: INFLUX_TOKEN=... node seedloop.mjs URL ORG BUCKET DEVICES DAYS   (prints the points written)
import {InfluxDB, Point} from '@influxdata/influxdb-client'

const [url, org, bucket, devicesArg, daysArg] = process.argv.slice(2)
const token = process.env.INFLUX_TOKEN
const DAY_MILLIS = 24 * 60 * 60 * 1000

function generateValue(period, min, max, time) {
  const dif = max - min
  const periodValue = (dif / 4) * Math.sin((((time / DAY_MILLIS) % period) / period) * 2 * Math.PI)
  const dayValue = (dif / 4) * Math.sin(((time % DAY_MILLIS) / DAY_MILLIS) * 2 * Math.PI - Math.PI / 2)
  return Math.trunc((min + dif / 2 + periodValue + dayValue + Math.random()) * 10) / 10
}

async function writeDevice(id, days) {
  const toTime = Math.trunc(Date.now() / 60_000) * 60_000
  let lastTime = toTime - days * DAY_MILLIS
  const batchSize = 2000
  const writeApi = new InfluxDB({url, token}).getWriteApi(org, bucket, 'ms', {
    batchSize: batchSize + 1,
    defaultTags: {clientId: id},
  })
  let written = 0
  try {
    const point = new Point('environment')
    while (lastTime < toTime) {
      const phase = ((lastTime % (30 * DAY_MILLIS)) / (30 * DAY_MILLIS)) * 2 * Math.PI
      point
        .floatField('Temperature', generateValue(30, 0, 40, lastTime))
        .floatField('Humidity', generateValue(90, 0, 99, lastTime))
        .floatField('Pressure', generateValue(20, 970, 1050, lastTime))
        .intField('CO2', generateValue(1, 400, 3000, lastTime))
        .intField('TVOC', generateValue(1, 250, 2000, lastTime))
        .floatField('Lat', 50.0873254 + 0.01 * Math.sin(phase))
        .floatField('Lon', 14.4071543 + 0.015 * (Math.cos(phase) - 1))
        .tag('TemperatureSensor', 'virtual_TemperatureSensor')
        .tag('HumiditySensor', 'virtual_HumiditySensor')
        .tag('PressureSensor', 'virtual_PressureSensor')
        .tag('CO2Sensor', 'virtual_CO2Sensor')
        .tag('TVOCSensor', 'virtual_TVOCSensor')
        .tag('GPSSensor', 'virtual_GPSSensor')
        .timestamp(lastTime)
      writeApi.writePoint(point)
      written++
      lastTime += 60_000
      if (written % batchSize === 0) {
        await writeApi.flush()
      }
    }
    await writeApi.flush()
  } finally {
    await writeApi.close()
  }
  return written
}

let total = 0
for (let d = 0; d < Number(devicesArg); d++) {
  total += await writeDevice(`seed-${String(d).padStart(2, '0')}`, Number(daysArg))
}
console.log(total)
