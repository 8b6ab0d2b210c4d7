// A device written with the npm client the seed uses, configured only from an iot-center-v2 `/api/env` answer and
// the seed's write settings: clientId as a default tag, 5,000-point batches, gzip (threshold 1 byte), millisecond
// precision. It writes POINTS minutes of environment points ending a minute ago.
//
// usage: IOT_ENV='<the /api/env JSON>' node write.mjs POINTS   (prints the points written; exits 1 on an error)
import {InfluxDB, Point} from '@influxdata/influxdb-client'

const env = JSON.parse(process.env.IOT_ENV)
const points = Number(process.argv[2])
const writeApi = new InfluxDB({url: env.influx_url, token: env.influx_token}).getWriteApi(env.influx_org, env.influx_bucket, 'ms', {
  batchSize: 5000,
  defaultTags: {clientId: env.id},
  gzipThreshold: 1,
  maxRetries: 0, // a refusal must surface, not be retried away
})
const end = Math.trunc(Date.now() / 60_000) * 60_000 - 60_000
try {
  for (let i = points - 1; i >= 0; i--) {
    const t = end - i * 60_000
    writeApi.writePoint(
      new Point('environment')
        .tag('TemperatureSensor', 'virtual_TemperatureSensor')
        .tag('CO2Sensor', 'virtual_CO2Sensor')
        .floatField('Temperature', 20 + (i % 10) / 10)
        .floatField('Humidity', 40.5)
        .floatField('Pressure', 1000.5)
        .intField('CO2', 400 + (i % 100))
        .intField('TVOC', 300)
        .floatField('Lat', env.default_lat)
        .floatField('Lon', env.default_lon)
        .timestamp(t),
    )
  }
  await writeApi.close() // flushes the last batch
  console.log(points)
} catch (e) {
  console.error(`write failed: ${e.statusCode ?? ''} ${e.body ?? e.message}`)
  process.exit(1)
}
